"""The operator's admin API (/admin/api), behind OPENMJ_ADMIN_TOKEN."""
