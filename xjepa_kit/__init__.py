"""xjepa-kit: X-JEPA cross-modal remote-sensing retrieval (Sentinel-1 <-> Sentinel-2).

Submodules are imported on demand (``from xjepa_kit.data import BigEarthNetMM``) so that the
model and training parts import with torch alone, without rasterio, faiss or leafmap.
"""

__version__ = "0.1.0"
