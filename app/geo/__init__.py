"""Geofenced offers: location pings from the card page matched against fences around stores."""
