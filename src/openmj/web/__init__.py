"""The web studio at `/` and the admin page at `/admin`: static files served by openmj itself."""
