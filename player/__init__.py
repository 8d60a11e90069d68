"""The read side for people: timeline assembly, templates and UI routes."""
