"""The availability cache finds pickup stores in a grid of cells on the unit sphere
(ledger.availability_cache.NodeTable.pickup_stores_near): every store within NEAR_CELL_KM of the
customer is among those it returns, at any latitude, across the antimeridian and at the poles."""

import random

import numpy as np

from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode, NodeType
from ledger.availability_cache import NEAR_CELL_KM, _table, _unit_vector


def _store(n: int, lat: float, lon: float, can_pickup: bool = True) -> CandidateNode:
    return CandidateNode(
        f"S{n:04d}", NodeType.STORE, GeoPoint(lat=lat, lon=lon), True, can_pickup, 100, {}
    )


def test_every_pickup_store_within_the_cell_length_is_found() -> None:
    rng = random.Random(5)
    places = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(400)]
    # Clusters where the grid is most likely to miss: the poles, the antimeridian, the equator.
    for lat, lon in ((89.9, 0.0), (-89.9, 120.0), (10.0, 179.95), (0.0, 0.0)):
        places += [(lat + rng.uniform(-0.6, 0.6), lon + rng.uniform(-0.6, 0.6)) for _ in range(60)]
    places = [(max(-90.0, min(90.0, lat)), (lon + 180) % 360 - 180) for lat, lon in places]
    stores = [_store(n, lat, lon, can_pickup=n % 7 != 0) for n, (lat, lon) in enumerate(places)]
    vectors = np.array([_unit_vector(s.location.lat, s.location.lon) for s in stores])
    table = _table(list(stores), vectors)
    found_some = 0
    for _ in range(600):
        lat, lon = rng.choice(places)
        here = GeoPoint(
            lat=max(-90.0, min(90.0, lat + rng.uniform(-0.5, 0.5))),
            lon=(lon + rng.uniform(-0.5, 0.5) + 180) % 360 - 180,
        )
        near = set(table.pickup_stores_near(_unit_vector(here.lat, here.lon)).tolist())
        within = {
            row
            for row, node_id in enumerate(table.node_ids)
            if table.can_pickup[row]
            and distance_km(GeoPoint(lat=table.lat[row], lon=table.lon[row]), here) <= NEAR_CELL_KM
        }
        assert within <= near, (here, within - near)
        assert all(table.can_pickup[row] for row in near)
        found_some += bool(within)
    assert found_some > 300  # most customers have a store in reach: the test is not vacuous
