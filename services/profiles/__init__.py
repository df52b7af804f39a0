"""The profiles service: one profile per user, validated settings, avatars, events, GDPR calls."""
