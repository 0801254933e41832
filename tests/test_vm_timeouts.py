"""The reboot's time limit follows the first boot's: a machine 2-3x slower, or three guests on two cores,
slows both alike (a first boot took 274 s to SSH under the layered batch here, and its reboot failed the
fixed 300 s it was given; next to a 4-host fleet under traffic a first boot was ready in 138 s and its
reboot not within 300 s)."""

from pipeline.vm.boot import reboot_timeout


def test_a_slow_first_boot_gives_its_reboot_three_times_as_long():
    assert reboot_timeout(200.0) == 600


def test_a_fast_first_boot_keeps_the_floor_and_a_very_slow_one_the_cap():
    assert reboot_timeout(45.0) == 420 and reboot_timeout(138.0) == 420
    assert reboot_timeout(2000.0) == 900


def test_no_first_boot_figure_gives_the_floor():
    assert reboot_timeout(None) == 420 and reboot_timeout(0) == 420
