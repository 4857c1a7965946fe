"""Android: `edgellama bundle` (artifacts of one model -> one verified bundle folder or zip) and
`edgellama push` (a bundle -> /data/local/tmp/edgellama/NAME on a device, through adb).

The bundle's manifest.json follows bundle.schema.json (in this package), the schema the app reads too."""
