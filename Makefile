# Installs overlay-boot system-wide (after `npm ci`, which builds everything):
#   make install      [PREFIX=/usr/local] [DESTDIR=]
#   make uninstall    (keeps /etc/subhosts.conf, and /etc/overlay-boot/conf.d unless empty)
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= /etc/systemd/system
LIBDIR := $(PREFIX)/lib/overlay-boot
SBINDIR := $(PREFIX)/sbin
MANDIR := $(PREFIX)/share/man
# The commands are package.json's "bin" (each bin/NAME.js runs the bundle dist/bin/NAME.mjs).
COMMANDS := $(shell node -p "Object.keys(require('./package.json').bin).join(' ')")

.PHONY: install uninstall
install:
	@test -f dist/index.js -a -f dist/bin/overlay-boot.mjs -a -x src/native/build/ovb-launch || { echo "run 'npm ci' first (it builds dist/ and src/native/build/)" >&2; exit 1; }
	rm -rf $(DESTDIR)$(LIBDIR)
	mkdir -p $(DESTDIR)$(LIBDIR)/src/native $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/init.d $(DESTDIR)$(SYSTEMDDIR)
	cp -r package.json package-lock.json dist bin conf.d $(DESTDIR)$(LIBDIR)/
	cp -r src/native/build $(DESTDIR)$(LIBDIR)/src/native/
	cp -r node_modules $(DESTDIR)$(LIBDIR)/
	cd $(DESTDIR)$(LIBDIR) && npm prune --omit=dev --offline --no-audit --no-fund >/dev/null 2>&1 || true
	for c in $(COMMANDS); do if test -f bin/$$c; then ln -sf $(LIBDIR)/bin/$$c $(DESTDIR)$(SBINDIR)/$$c; elif test -f bin/$$c.js; then ln -sf $(LIBDIR)/bin/$$c.js $(DESTDIR)$(SBINDIR)/$$c; fi; done
	for m in man/*.5; do test ! -f $$m || cp $$m $(DESTDIR)$(MANDIR)/man5/; done
	for m in man/*.8; do test ! -f $$m || cp $$m $(DESTDIR)$(MANDIR)/man8/; done
	sed 's|@SBINDIR@|$(SBINDIR)|g' init/subhosts > $(DESTDIR)$(SYSCONFDIR)/init.d/subhosts
	chmod 755 $(DESTDIR)$(SYSCONFDIR)/init.d/subhosts
	sed 's|@SBINDIR@|$(SBINDIR)|g' init/subhosts@.service > $(DESTDIR)$(SYSTEMDDIR)/subhosts@.service
	sed 's|@SBINDIR@|$(SBINDIR)|g' init/overlay-pkgd > $(DESTDIR)$(SYSCONFDIR)/init.d/overlay-pkgd
	chmod 755 $(DESTDIR)$(SYSCONFDIR)/init.d/overlay-pkgd
	sed 's|@SBINDIR@|$(SBINDIR)|g' init/overlay-pkgd.service > $(DESTDIR)$(SYSTEMDDIR)/overlay-pkgd.service
	test -e $(DESTDIR)$(SYSCONFDIR)/subhosts.conf || cp init/subhosts.conf $(DESTDIR)$(SYSCONFDIR)/subhosts.conf
	mkdir -p $(DESTDIR)$(SYSCONFDIR)/overlay-boot/conf.d

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)
	for c in $(COMMANDS); do rm -f $(DESTDIR)$(SBINDIR)/$$c; done
	for m in man/*.5; do rm -f $(DESTDIR)$(MANDIR)/man5/$$(basename $$m); done
	for m in man/*.8; do rm -f $(DESTDIR)$(MANDIR)/man8/$$(basename $$m); done
	rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/subhosts $(DESTDIR)$(SYSTEMDDIR)/subhosts@.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/overlay-pkgd $(DESTDIR)$(SYSTEMDDIR)/overlay-pkgd.service
	-rmdir $(DESTDIR)$(SYSCONFDIR)/overlay-boot/conf.d $(DESTDIR)$(SYSCONFDIR)/overlay-boot 2>/dev/null
