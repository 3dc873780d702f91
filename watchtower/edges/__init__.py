"""Safe edges of the web app: trusted Host names, relative links and redirects, security headers, offline docs."""
