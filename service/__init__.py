"""Hỏi Đáp's ways in: the web page, the JSON API and the command line."""
