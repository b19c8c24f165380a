"""Map HTML (folium) with local assets, the SQLite tile cache and static map images.

Nothing here imports Qt: the desktop's map view serves what these modules produce through
its ``storedesk://`` scheme, and the report engine draws static maps without a browser.
"""
