"""The content service: feeds, articles and remote config, personalised, cached, with media."""
