# Prints the winbake-updates record as base64 (its bytes unchanged, whatever
# the console's code page); exits 3 when the image has none.
$path = {{ ps .Path }}
if (-not (Test-Path -LiteralPath $path)) {
    exit 3
}
Write-Output ([System.Convert]::ToBase64String([System.IO.File]::ReadAllBytes($path)))
