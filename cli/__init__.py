"""The `opendom` command: one sub-command module per job, registered in cli.main."""
