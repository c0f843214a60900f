#!/usr/bin/env bash
# Installs the intervision assistant as a system service on a Raspberry Pi (Raspberry Pi
# OS Bookworm / Debian 12). Run it as root from a checkout; safe to run again, which is
# also how to update: it copies the checkout again and restarts the service.
#
#   sudo systemd/install.sh                        install or update
#   sudo systemd/install.sh --uninstall            remove the service and /opt/intervisie;
#                                                  keep sessions and settings
#   sudo systemd/install.sh --uninstall --purge    also remove /var/lib/intervisie,
#                                                  /etc/intervisie, the user, and the group gpio
#                                                  if it made it and nobody else is in it
#
# What it sets up: Debian packages, the system user "intervisie" (groups audio, gpio, lp),
# a root-owned copy of the checkout in /opt/intervisie with its venv, the settings file
# /etc/intervisie/config.toml, and the unit intervisie.service, enabled and started.
set -euo pipefail

readonly app=intervisie
readonly prefix=/opt/intervisie
readonly etc_dir=/etc/intervisie
readonly config=/etc/intervisie/config.toml
readonly state_dir=/var/lib/intervisie
readonly unit_path=/etc/systemd/system/intervisie.service
readonly udev_rule=/etc/udev/rules.d/60-intervisie-gpio.rules
# Written when this script made the group gpio (a plain Debian has none), so that
# --purge removes only a group it made; in /etc/intervisie, which only root can write.
readonly gpio_marker=/etc/intervisie/installer-created-gpio-group

# The system's own Python and tools: a python3 found first on root's PATH (pyenv, a
# build under /root) would make a venv that the service user cannot run.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# Root may run with a umask of 077 (sudo keeps the caller's); the service user must be
# able to read the program and its venv.
umask 022

say() { printf 'install: %s\n' "$*"; }
fail() { printf 'install: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

uninstall=0
purge=0
for arg in "$@"; do
    case "$arg" in
        --uninstall) uninstall=1 ;;
        --purge) uninstall=1; purge=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; fail "unknown option: $arg" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || fail "must run as root: sudo systemd/install.sh $*"

have_systemd=0
[ -d /run/systemd/system ] && have_systemd=1

# --- Uninstall ---------------------------------------------------------------------

# The group gpio, when this script made it and nobody else uses it now.
remove_own_gpio_group() {
    local members users gid
    getent group gpio >/dev/null || return 0
    members="$(getent group gpio | cut -d: -f4)"
    gid="$(getent group gpio | cut -d: -f3)"
    # Users with gpio as their own (primary) group are in it too.
    users="$(getent passwd | awk -F: -v gid="$gid" '$4 == gid { print $1 }' | paste -sd, -)"
    members="${members}${members:+${users:+,}}${users}"
    if [ -n "$members" ]; then
        say "kept the group gpio: other users are in it ($members)"
        return 0
    fi
    groupdel gpio
    say "removed the group gpio (this script had made it)"
}

if [ "$uninstall" -eq 1 ]; then
    if [ "$have_systemd" -eq 1 ] && [ -e "$unit_path" ]; then
        say "stopping and disabling $app.service"
        systemctl disable --now "$app.service" || true
    elif [ -e "$unit_path" ]; then
        # Without a running systemd (a chroot, an image, a container) systemctl still
        # edits the links; what it cannot remove is removed below.
        systemctl disable "$app.service" >/dev/null 2>&1 || true
    fi
    for link in /etc/systemd/system/*.wants/"$app.service"; do
        if [ -L "$link" ]; then
            rm -f "$link"
            say "removed $link"
        fi
    done
    if [ -e "$unit_path" ]; then
        rm -f "$unit_path"
        say "removed $unit_path"
    fi
    if [ "$have_systemd" -eq 1 ]; then
        systemctl daemon-reload
    fi
    if [ "$purge" -eq 1 ]; then
        own_gpio=0
        [ -f "$gpio_marker" ] && own_gpio=1
        rm -rf "$state_dir" "$etc_dir"
        say "removed the sessions in $state_dir and the settings in $etc_dir"
        if id -u "$app" >/dev/null 2>&1; then
            userdel "$app"
            say "removed the user $app"
        fi
        if [ "$own_gpio" -eq 1 ]; then
            remove_own_gpio_group
        fi
        if [ -e "$udev_rule" ]; then
            rm -f "$udev_rule"
            say "removed $udev_rule"
        fi
    else
        say "kept the sessions in $state_dir, the settings in $etc_dir and the user $app"
        say "(remove them too with: sudo systemd/install.sh --uninstall --purge)"
    fi
    # Last, because this script may itself run from there.
    if [ -d "$prefix" ]; then
        rm -rf "$prefix"
        say "removed the program in $prefix"
    fi
    say "uninstalled"
    exit 0
fi

# --- Install -----------------------------------------------------------------------

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$src/pyproject.toml" ] || [ ! -f "$src/systemd/intervisie.service" ]; then
    fail "run this script from a checkout of the project (not found: $src/pyproject.toml)"
fi

# The processor; INTERVISIE_MACHINE stands in for it in the tests. Vosk, the speech
# recognition, has builds for aarch64 and armv7l (Pi 3, 4, 5, Zero 2 W) but none for
# armv6l (Pi Zero, Zero W, Pi 1): there the assistant only keeps time.
machine="${INTERVISIE_MACHINE:-$(uname -m)}"
timekeeping_only=0
if [ "$machine" = armv6l ]; then
    timekeeping_only=1
    say "this is a Pi Zero or Pi 1 (armv6l): speech recognition (Vosk) has no build for it."
    say "The assistant will keep time and speak, but not listen or take notes. For notes use a Pi 4 or 5."
fi

# Debian packages: speech (espeak-ng), PortAudio for sounddevice, aplay/arecord, the venv,
# rsync for the copy below, and libatomic1 that Vosk needs on ARM. GPIO (lgpio) comes
# from PyPI through the project's "pi" extra, since the venv does not see Debian's
# python3-lgpio.
debs=(espeak-ng libportaudio2 alsa-utils python3-venv rsync)
case "$machine" in
    aarch64|armv7l) debs+=(libatomic1) ;;
esac
missing=()
for pkg in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
else
    say "Debian packages already installed"
fi

# The service user. /dev/snd/* belongs to the group audio, /dev/gpiochip* and
# /dev/gpiomem to gpio (Raspberry Pi OS), a USB receipt printer's /dev/usb/lp* to lp
# (udev's 50-udev-default.rules); the unit names all three in SupplementaryGroups=, so
# all three must exist: without one the service does not start.
made_gpio=0
if ! getent group gpio >/dev/null; then
    groupadd --system gpio
    made_gpio=1
    say "created the group gpio"
fi
# Raspberry Pi OS gives the GPIO devices to that group (udev's 99-com.rules); plain
# Debian does not, and then this rule does.
if [ -d /etc/udev/rules.d ] && ! grep -qs 'GROUP="gpio"' /etc/udev/rules.d/*.rules \
        /usr/lib/udev/rules.d/*.rules /lib/udev/rules.d/*.rules; then
    printf '%s\n' \
        '# Installed by intervisie (systemd/install.sh): let the gpio group use the GPIO chips.' \
        'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' \
        'KERNEL=="gpiomem*", GROUP="gpio", MODE="0660"' >"$udev_rule"
    udevadm control --reload-rules 2>/dev/null || true
    udevadm trigger --subsystem-match=gpio 2>/dev/null || true
    say "installed $udev_rule"
fi
# lp is one of Debian's static groups (base-passwd, gid 7), so it is kept on --purge even
# when it had to be made here: printing packages (cups) expect it.
if ! getent group lp >/dev/null; then
    groupadd --system lp
    say "created the group lp"
fi
if id -u "$app" >/dev/null 2>&1; then
    usermod --append --groups audio,gpio,lp "$app"
    say "user $app exists (groups: $(id -nG "$app"))"
else
    useradd --system --user-group --groups audio,gpio,lp --home-dir "$state_dir" --no-create-home \
        --shell /usr/sbin/nologin --comment "intervision room assistant" "$app"
    say "created the system user $app"
fi
install -d -m 0700 -o "$app" -g "$app" "$state_dir"
install -d -m 0750 -o root -g "$app" "$etc_dir"
if [ "$made_gpio" -eq 1 ]; then
    printf '%s\n' "The group gpio was made by systemd/install.sh; --uninstall --purge removes it when nobody else is in it." \
        >"$gpio_marker"
fi

# The program: a root-owned copy, so the service cannot change its own code.
if [ "$src" != "$prefix" ]; then
    say "copying $src to $prefix"
    install -d -m 0755 "$prefix"
    rsync -a --delete --chown=root:root --chmod=go-w,go+rX \
        --exclude=/.venv --exclude=/.git --exclude=__pycache__ --exclude=.pytest_cache \
        --exclude=.mypy_cache --exclude='*.pyc' --exclude='*.egg-info' --exclude=/build \
        --include=/models/README.md --exclude='/models/*' \
        "$src/" "$prefix/"
fi
say "preparing the virtual environment in $prefix/.venv"
INTERVISIE_MACHINE="$machine" "$prefix/scripts/setup.sh"
# The service runs with /opt read-only: compile the byte code now, once.
"$prefix/.venv/bin/python" -m compileall -q "$prefix/assistant" >/dev/null
if ! (cd / && runuser -u "$app" -- "$prefix/.venv/bin/python" -c 'import assistant.cli') 2>/dev/null; then
    fail "the user $app cannot run $prefix/.venv/bin/python (made from an unreadable Python?);" \
        "remove $prefix/.venv and run this script again"
fi

# The settings: created once, never overwritten.
install -d -m 0750 -o root -g "$app" "$etc_dir"
if [ -e "$config" ]; then
    say "kept the settings in $config"
    if [ "$timekeeping_only" -eq 1 ] && ! grep -Eq '^[[:space:]]*enabled[[:space:]]*=[[:space:]]*false' "$config"; then
        say "NOTE: on armv6l set [listening] enabled = false in $config: this machine cannot listen"
    fi
else
    cat >"$config" <<'EOF'
# Settings of the intervision assistant service. Put here only what you want to change:
# everything else comes from /opt/intervisie/config/default.toml, which lists every key
# and what it means. After a change: sudo systemctl restart intervisie

# Where sessions are kept: the service's state folder, so that `sudo intervisie report`
# and `sudo intervisie forget` on the command line find the service's sessions.
data_dir = "/var/lib/intervisie"

# language = "nl"            # "nl" or "en"
# method = "intervisie"
# participants = 6           # group size, for the rounds; 0: not counted
#
# [button]
# pin = 17                   # BCM number; the button connects it to ground
# hold_seconds = 1.5
#
# [led]
# enabled = true
# pin = 18
#
# [speech]
# output_device = "Headphones"   # part of a device name that `intervisie check` lists
# rate = 150
# volume = 1.0
#
# [schedule]
# mode = "keep_end"          # or "fixed"
EOF
    if [ "$timekeeping_only" -eq 1 ]; then
        cat >>"$config" <<'EOF'

# This is a Pi Zero or Pi 1 (armv6l): speech recognition (Vosk) has no build for it, so
# the assistant keeps time and speaks but does not listen or take notes.
[listening]
enabled = false
EOF
    fi
    chown root:"$app" "$config"
    chmod 0640 "$config"
    if [ "$timekeeping_only" -eq 1 ]; then
        say "created $config (listening switched off: armv6l; everything else the defaults)"
    else
        say "created $config (all settings commented out: the defaults apply)"
    fi
fi

# --- Speech recognition model ------------------------------------------------------
# Installed here, by root, into the models folder of the service's settings (by default
# $prefix/models, which the copy above leaves alone): the service has no network at all
# (PrivateNetwork=yes, IPAddressDeny=any) and sees /opt read-only (ProtectSystem=strict),
# so it can read the model (0644 files, 0755 folders) but neither fetch nor change it.
# A model folder put in the checkout's models/ by hand (a Pi without internet) is copied.
if [ "$src" != "$prefix" ]; then
    for dir in "$src"/models/*/; do
        [ -d "$dir" ] || continue
        name="$(basename "$dir")"
        if [ ! -e "$prefix/models/$name" ]; then
            rsync -a --chown=root:root --chmod=go-w,go+rX "$dir" "$prefix/models/$name/"
            say "copied the model $name from $src/models"
        fi
    done
fi
# Without a model the assistant still keeps time: a failure here is a warning.
if [ "$timekeeping_only" -eq 1 ]; then
    say "no speech recognition model installed: this machine (armv6l) only keeps time"
elif (cd / && "$prefix/.venv/bin/intervisie" model install --config "$config"); then
    # Checked as the service user: proves that user can read and load it.
    if ! (cd / && runuser -u "$app" -- "$prefix/.venv/bin/intervisie" model check --config "$config"); then
        say "WARNING: the speech model does not pass its check (see above); the assistant keeps time without it"
    fi
else
    say "WARNING: the speech model is not installed; the assistant keeps time without listening"
    say "install it later with: sudo $prefix/.venv/bin/intervisie model install --config $config"
fi

# The unit.
install -m 0644 "$prefix/systemd/intervisie.service" "$unit_path"
say "installed $unit_path"
if [ "$have_systemd" -eq 1 ]; then
    systemctl daemon-reload
    systemctl enable "$app.service"
    say "starting $app.service (it speaks a greeting when it is ready)"
    # restart, not start: a second run of this script is an update.
    if ! systemctl restart "$app.service"; then
        say "the service did not start; see: journalctl -u $app -e"
        exit 1
    fi
else
    # A chroot or an image being built: enable for the next boot only.
    systemctl enable "$app.service"
    say "systemd is not running here: $app.service will start at the next boot"
fi

model_line="sudo -u $app $prefix/.venv/bin/intervisie model check --config $config"
[ "$timekeeping_only" -eq 1 ] && model_line="none: this machine (armv6l) only keeps time, without notes"
cat <<EOF

Installed. The assistant starts at every boot.
  Follow its log:     journalctl -u $app -f
  Its state:          systemctl status $app
  Check the speaker and the button (stop the service first; it holds both):
      sudo systemctl stop $app
      sudo -u $app sh -c 'cd $state_dir && $prefix/.venv/bin/intervisie check'
      sudo systemctl start $app
  Settings:           $config
  Speech model:       $model_line
EOF
