"""Study bundles: scaffold a new study (scaffold), read a bundle (bundle), check it against the
corpus (check) and add it to the build (add)."""
