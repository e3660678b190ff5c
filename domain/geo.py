"""Great-circle distances between nodes and customers."""

from math import asin, cos, radians, sin, sqrt

from pydantic import BaseModel, Field

EARTH_RADIUS_KM = 6371.0088


class GeoPoint(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


def distance_km(a: GeoPoint, b: GeoPoint) -> float:
    """Haversine distance; precise enough to rank nodes and estimate transit."""
    dlat = radians(b.lat - a.lat)
    dlon = radians(b.lon - a.lon)
    h = sin(dlat / 2) ** 2 + cos(radians(a.lat)) * cos(radians(b.lat)) * sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(sqrt(h))
