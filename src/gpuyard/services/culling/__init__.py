"""Idle culling and maximum lifetime (issue 19): the loop and the policies."""
