"""What every part of Switchboard shares: settings, store, jobs, audit, calendar and the CLI."""
