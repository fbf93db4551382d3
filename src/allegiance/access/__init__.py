"""Who may do what: principals, roles and the one authorization policy every edge consults."""
