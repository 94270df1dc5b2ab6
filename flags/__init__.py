"""flags: absl flag definitions shared by the command-line scripts, grouped by stage."""
