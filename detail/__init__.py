"""detail: RI2ITN displacement network; small- and large-pose detail."""
