"""Product analytics: events from the Segment SDKs (HTTP Tracking API), counts and profiles."""
