"""Wire schema and framing of the sender -> receiver record stream."""
