"""`python -m reconstruct ...`: the reconstruct command (reconstruct/command.py)."""

from reconstruct import command

if __name__ == '__main__':
  command.run()
