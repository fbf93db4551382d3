"""Programs, the organizations they serve and the people inside them."""
