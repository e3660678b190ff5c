"""Runtime assembly: settings, the embedded stack launcher, demo data and the `opendom` command."""
