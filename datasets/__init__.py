"""The recorded reference runs, shipped inside the package as ``labkit.lab_datasets``;
``labkit.resources`` finds them, installed or in a checkout."""
