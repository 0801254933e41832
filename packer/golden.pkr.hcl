# Golden image build. `golden build` fills the variables; run by hand with, for example:
#   packer build -only=qemu.local -var-file=runs/<version>/build/golden.pkrvars.json packer/
# The hardening driver (var.hardening_script) sources its appliers and CIS sections from the
# provision directory's hardening/, uploaded with the plan.
#
# Written for Debian's Packer 1.6.6, which has the qemu and amazon-ebs builders built in. Current
# Packer (>= 1.7) ships builders as plugins: add a `packer { required_plugins { qemu = { source =
# "github.com/hashicorp/qemu", version = ">= 1.1" } amazon = { source = "github.com/hashicorp/amazon",
# version = ">= 1.3" } } }` block and run `packer init packer/` first.

variable "run_dir" { type = string }
variable "provision_dir" { type = string }
variable "hardening_script" { type = string }
variable "image_name" { type = string }
variable "base_image" {
  type    = string
  default = ""
}
variable "base_sha256" {
  type    = string
  default = ""
}
variable "accelerator" {
  type    = string
  default = "tcg"
}
variable "cpu_model" {
  type    = string
  default = "max"
}
variable "ssh_private_key_file" {
  type    = string
  default = ""
}
variable "seed_files" {
  type    = list(string)
  default = []
}
variable "memory" {
  type    = number
  default = 1536
}
variable "cpus" {
  type    = number
  default = 2
}
variable "aws_region" {
  type    = string
  default = "eu-west-1"
}
variable "aws_instance_type" {
  type    = string
  default = "t3.small"
}
variable "aws_source_ami_owner" {
  type    = string
  default = "136693071363" # Debian's official AWS account
}

locals {
  build_user = "golden-build"
}

# Local target: boot the base qcow2, provision it over SSH as a per-build user whose key arrives
# on a cloud-init NoCloud seed (cd_files, label cidata), and write the candidate qcow2.
source "qemu" "local" {
  iso_url          = var.base_image
  iso_checksum     = "sha256:${var.base_sha256}"
  disk_image       = true
  use_backing_file = false
  format           = "qcow2"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.accelerator
  memory           = var.memory
  cpus             = var.cpus
  headless         = true
  boot_wait        = "1s"
  cd_files         = var.seed_files
  cd_label         = "cidata"
  # Loopback-only SSH forward, and the serial console into the run directory.
  qemuargs = [
    ["-cpu", var.cpu_model],
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-serial", "file:${var.run_dir}/build-console.log"],
  ]
  communicator              = "ssh"
  ssh_username              = local.build_user
  ssh_private_key_file      = var.ssh_private_key_file
  ssh_timeout               = "8m"     # answers in ~90 s under TCG; the driver retries a timeout once
  ssh_file_transfer_method  = "sftp"
  # cleanup.sh leaves a finaliser in /run (tmpfs) that removes the build user and powers off.
  shutdown_command          = "sudo -n /bin/sh /run/golden-finalize"
  shutdown_timeout          = "5m"
  output_directory          = "${var.run_dir}/packer-output"
  vm_name                   = "${var.image_name}.qcow2"
}

# AWS target, exercised by a later issue: the same provisioning on Debian's official AMI.
source "amazon-ebs" "aws" {
  region                 = var.aws_region
  instance_type          = var.aws_instance_type
  # AMI names allow no "+": golden-linux-2026.11.27+1 becomes golden-linux-2026.11.27-build1
  # (the exact version stays in the golden:version tag).
  ami_name               = replace(var.image_name, "+", "-build")
  ssh_username           = "admin"
  skip_region_validation = true
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = [var.aws_source_ami_owner]
    most_recent = true
  }
  tags = {
    Name             = var.image_name
    "golden:version" = var.image_name
  }
}

build {
  sources = ["source.qemu.local", "source.amazon-ebs.aws"]

  # Scripts run through their interpreter, never executed from /tmp: a hardened base (building
  # on a published golden image) mounts /tmp noexec.
  provisioner "shell" {
    inline          = ["mkdir -p /tmp/golden-provision"]
    execute_command = "sh '{{ .Path }}'"
  }

  provisioner "file" {
    source      = "${var.provision_dir}/"
    destination = "/tmp/golden-provision"
  }

  provisioner "shell" {
    environment_vars = ["GOLDEN_PROVISION=/tmp/golden-provision"]
    execute_command  = "sudo -n env {{ .Vars }} sh '{{ .Path }}'"
    scripts = [
      "${path.root}/scripts/bootstrap.sh",
      "${path.root}/scripts/install-agents.sh",
    ]
  }

  provisioner "shell" {
    environment_vars = ["GOLDEN_PROVISION=/tmp/golden-provision"]
    execute_command  = "sudo -n env {{ .Vars }} bash '{{ .Path }}'"
    scripts          = [var.hardening_script]
  }

  provisioner "shell" {
    environment_vars = ["GOLDEN_PROVISION=/tmp/golden-provision"]
    execute_command  = "sudo -n env {{ .Vars }} sh '{{ .Path }}'"
    scripts = [
      "${path.root}/scripts/stamp.sh",
      "${path.root}/scripts/customize.sh",
      "${path.root}/scripts/cleanup.sh",
    ]
  }

  post-processor "manifest" {
    output     = "${var.run_dir}/packer-manifest.json"
    strip_path = false
  }
}
