"""The response layer: what to do about which finding, when, and when not.

- `breach`: a pass's detector outcomes, and whether anything breached;
- `rules`: the policy as data (ordered rules, confirmation, grouping, recovery, dry run) and its defaults;
- `decide`: match a pass against the rules, confirm k of n, and plan the actions;
- `store`: policies and per-pass decisions in the database;
- `holds`: operator decisions that hold automatic mitigation;
- `backtest`: replay stored check runs against a candidate policy.
"""
