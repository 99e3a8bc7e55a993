# Hands the free space of C: back to the virtual disk (attached with
# discard=unmap), so that the image keeps only the clusters in use.
$ErrorActionPreference = 'Stop'
Optimize-Volume -DriveLetter C -ReTrim -Verbose
