"""Revisions of the kit's migrations; a package only so that wheels include the files."""
