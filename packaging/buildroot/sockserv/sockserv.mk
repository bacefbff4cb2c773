################################################################################
#
# sockserv — a REFERENCE recipe, UNTESTED (see Config.in). SOCKSERV_VERSION
# must be include/sockserv/version.hpp's SOCKSERV_VERSION_STRING; set
# SOCKSERV_SITE to where you get sockserv from.
#
################################################################################

SOCKSERV_VERSION = 0.1.0
SOCKSERV_SITE = https://example.invalid/sockserv/archive
SOCKSERV_SOURCE = sockserv-$(SOCKSERV_VERSION).tar.gz
SOCKSERV_LICENSE = BSL-1.0
SOCKSERV_LICENSE_FILES = LICENSE
# Header-only: nothing goes onto the target, everything into staging.
SOCKSERV_INSTALL_STAGING = YES
SOCKSERV_INSTALL_TARGET = NO

define SOCKSERV_INSTALL_STAGING_CMDS
	$(MAKE) -C $(@D) install PREFIX=/usr DESTDIR=$(STAGING_DIR)
endef

$(eval $(generic-package))
