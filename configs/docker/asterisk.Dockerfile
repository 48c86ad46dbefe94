# Asterisk 22 from Debian's packages, with the project's sample configs: the
# same Asterisk the e2e suite runs in its debootstrap chroot.
FROM debian:sid-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends asterisk asterisk-moh-opsound-gsm \
 && rm -rf /var/lib/apt/lists/* \
 && mv /etc/asterisk /etc/asterisk.dist && mkdir /etc/asterisk
COPY configs/asterisk/*.conf /etc/asterisk/
# -f: stay in the foreground; no -c: a console without a terminal spins a core.
CMD ["/usr/sbin/asterisk", "-f", "-n"]
