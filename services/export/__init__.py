"""Export: immutable dataset versions with signed-off manifests."""
