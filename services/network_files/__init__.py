"""A retailer's whole network from files, and back (docs/network-files.md): nodes, SKUs,
channels with their pools, carrier services and opening stock, one CSV or JSON file per kind.

Reading rows into specifications is domain.network_files (pure); applying them is
services.configuration and services.catalogue (nodes, channels, carriers, SKUs) and this
package's bulk stock writer; exporting writes the same files back."""

from services.network_files.exporting import ExportRefused, export_file, export_folder
from services.network_files.importing import (
    FileOutcome,
    ImportOutcome,
    NetworkFilesRefused,
    import_file,
    import_folder,
    network_files,
)

__all__ = [
    "ExportRefused",
    "FileOutcome",
    "ImportOutcome",
    "NetworkFilesRefused",
    "export_file",
    "export_folder",
    "import_file",
    "import_folder",
    "network_files",
]
