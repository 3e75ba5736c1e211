//! Fixed test signing keys for the in-process provider's ID tokens. Test fixtures, not secrets:
//! they sign tokens only this process's tests trust.

pub(super) const ED_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEIB3NuctQbUOjUKiSTARa6OLfnfg8oqNCbnMmRQqYGQdL\n\
-----END PRIVATE KEY-----\n\
";

pub(super) const ED2_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEIJXOjmEqZIv8kCQDdztdjfN60IXIIf3dB3QvyIDXjER9\n\
-----END PRIVATE KEY-----\n\
";

pub(super) const EC_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg89/xceqWBdzsH73h\n\
0ZJNDpECNxl8R1xhXMTy32PAJr2hRANCAAQRust/yCGgvJ8tNs7LEfbdT6KN0a4p\n\
NhSKNoGSLyykYDwI1AoZ90qpKu3hbaxoguVA0GQ3yhCTTzwvrv7hUbBN\n\
-----END PRIVATE KEY-----\n\
";

pub(super) const RSA_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCxc/6yjnPy2ABW\n\
n7Mp0wrdcqOxjXMzqG5rNcYkPjJBK04FzpNZ8iz44I08us4fk0HoD6YbPWqpnrfx\n\
zeufNGepUzCeSVCTVg3+w+wlCRNp1wXbAvTxl9gAV5hdkeMkQOqffNrwo8oVWtNB\n\
YrDMqvnhE1piEYdlEIHQJTCKp2WksIYVUF/v1c8MVFFHBdjSvRifBl4CLyqCcY6f\n\
gIQnbFeO4MiyLw2EnZelA+mE+KPRcDfYk3+Aggaod3BZOcargBbVqB+TFTmO8+14\n\
0SA8Xw+RsqLFimLh1FByUQ/Jx7wxMZEymKaH0wM5KRI/yXt9wDl6q2KtQQsHEISG\n\
79vKqj63AgMBAAECggEAAfEa0kbWHtPP2UHY6NgTB//APVx8C2PheqfTcKLwQ+dj\n\
h7oxFtY3Z+N9KhvPgWAZoewnfdaiwgtw8uLrnB06/p5RRqsc5Tce8mNKldBRAUes\n\
iKs920z/Gb1+jj9Td7Wq/oH45Q6ugU7ks/ExjrGcoz3SjKWhq4nfnO7QGP0NC0P9\n\
0c4vZt7zLfX9dy7H5pBKEuSG1zZYJRDSeXuKijmS3AVA2RUW7pv/N1Nm/l+z+BqG\n\
3WrqIu1nZPg+yElwNScSSgckEhmr1K8Chrxd3Zhw/1Dh3O4lUlDieN6OMW6tlW2m\n\
I3asfKuBMF9JVuEj38+Qz13wTBqMTua6wApvrFm4wQKBgQDvhxctAnojImcocDpp\n\
NjlaJQBr0Cu7l37STQkuA7Za55EebaoCjtrdWs8DP8GSXg1t2Q7EuT/WPdGXiVHv\n\
GC0VzSCEorfcsyT5A5yNMI+89UNjF8ARTUMZ2puAcYitMw+OsCgfNWnfkD9y4RYN\n\
H1IiaXZYiH8UssG7Rpr23P7IxwKBgQC9qBMq2S1ruU6yjlx5zBX1uFUSX1NXoiY8\n\
+zsIiKjmg9Vx9pfcDk8Aq586DcbsONbWIhqkZl7kLGIA3LiRROAmyEjD7P7NOxxd\n\
FgqVavTigGrvBx2bmZPlVcS8Xssf9Zn/V9q00LytRul8zcYdI2qlHEE1uMgLv853\n\
kOhIjidKkQKBgHCHcb7mjATXk8kuuHJXVChie8kq2nDeImmgYXCps9EPO2ElOhrL\n\
jE0z7U9kc4dVAlAaClMniLMZBc+AZurB2+SDIwTNAT4BN5x5MuIt70lhnFAAh25Z\n\
cu3Bgw6byA8+js+FOMQ4rs2mEfjhgB+YGFksXLoJHlLWDCf0arcRae1fAoGAQr9Z\n\
Z5Yhly0TlmHmB/OcsusZ/apQ8aGepY2hvCIkl2REhaRM0+SxR0IfetYIcXCbo6dD\n\
CyMAOHuqTjVgO7gqz1tjyJirIF2yYMx2Exoeb2zUtaUidXW6iFcEM2uFP403kpc/\n\
4K0qCi3P1N2y4ORrDwr/pEGRHhl2N7xnE8n76BECgYEArs2GT+aGof9gYiRIzB7N\n\
NQExOdaHZ3aTWfJOopp+GUgDkyFZLN1T94Qk9iSK7e4fOFuQFHVC0KIRtP4ikZBw\n\
2DOcHUgsp9mWDF8r+kZdMc+t9v7Oh9PZvgIrDvvFDB5OwyLFpsm3Srl0qOj2nVUH\n\
AVBkJeH4ykpxO5aajrsRm/o=\n\
-----END PRIVATE KEY-----\n\
";
