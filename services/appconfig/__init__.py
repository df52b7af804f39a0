"""The app-config service: what installed apps read at start — latest and minimum versions,
halted versions, kill switches — so a halted release reaches apps already in users' hands."""
