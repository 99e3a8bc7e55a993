# A template with a mistake: packer validate must name the field and what it accepts.
source "file" "disk" {
  content = "x"
  target  = "disk.raw"
}

build {
  sources = ["source.file.disk"]

  post-processor "winbake-compress" {
    format = "zip"
  }
}
