"""Analysis and signals on bars (pure): indicators, rules, signal records."""
