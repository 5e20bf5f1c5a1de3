"""The Flask receiver: one blueprint per source, health and metrics, the survey and hosted-form pages."""
