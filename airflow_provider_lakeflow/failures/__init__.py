"""What an ended update's errors mean, with no databricks-sdk: ``categories`` (the category table and which
documented error condition falls in which), ``tables`` (source tables to destination tables through the spec) and
``classify`` (the classifier over raw event dicts)."""
