"""The member portal: a mobile-first page where a customer sees points, tier and rewards."""
