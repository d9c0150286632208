using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Tests.Infrastructure;
using Identity.Server.IntegrationTests.Connect;

namespace Identity.Server.IntegrationTests.Clients;

/// <summary>
/// <c>tls_client_auth</c> with CRLs (<c>Mtls:CrlFile</c>, decision 0046): the real server on Kestrel with its mTLS port,
/// three test CAs each with its CRL file made by <see cref="CertificateRevocationListBuilder"/>: one current, one past
/// its nextUpdate, one replaced while the server runs; and an RSA root with two intermediates, whose RSA-signed CRL
/// revokes one of them and a client certificate the root issued itself.
/// </summary>
public sealed class MutualTlsCrlTests(MutualTlsCrlTests.CrlServer server) : IClassFixture<MutualTlsCrlTests.CrlServer>
{
    [Fact]
    public async Task ClientCredentials_CertificateNotInTheCrl_TokenBoundToThatCertificate()
    {
        await AssertAcceptedAsync(server.Good);
    }

    [Fact]
    public async Task ClientCredentials_RevokedCertificate_InvalidClient401AuditedRevoked()
    {
        await AssertRefusedAsync(server.Revoked, "revoked");
    }

    [Fact]
    public async Task ClientCredentials_CrlPastItsNextUpdate_InvalidClient401AuditedCrlExpired()
    {
        await AssertRefusedAsync(server.OfStaleCa, "crl_expired");
    }

    [Fact]
    public async Task ClientCredentials_CrlReplacedWhileRunning_CertificateAcceptedBeforeIsRefusedNext()
    {
        // Arrange: accepted (and its validation cached) under the CRL that does not list it.
        var first = await server.Mtls.TokenAsync(server.Mtls.Mtls, "svc-pki", server.OfReloadCa);
        Assert.True(first.Status == HttpStatusCode.OK, first.Body.ToString());

        // Act: the CRL file is replaced by one that revokes it.
        server.WriteReloadCrl(revoke: true);

        // Assert
        await AssertRefusedAsync(server.OfReloadCa, "revoked");
    }

    [Fact]
    public async Task ClientCredentials_CrlReplacedByAnUnreadableFile_PreviousCrlKept()
    {
        // Act: the live CA's CRL file replaced by garbage while the server runs.
        await server.ReplaceLiveCrlAsync("not a CRL");
        try
        {
            // Assert: the previous CRL still refuses its revoked certificate and lets the others in.
            await AssertRefusedAsync(server.Revoked, "revoked");
            var (status, body) = await server.Mtls.TokenAsync(server.Mtls.Mtls, "svc-pki", server.Good);
            Assert.True(status == HttpStatusCode.OK, body.ToString());
        }
        finally
        {
            await server.ReplaceLiveCrlAsync(null);
        }
    }

    [Fact]
    public async Task ClientCredentials_CertificateOfAnIntermediateCaNotRevoked_TokenBoundToThatCertificate()
    {
        // The chain root (RSA) → intermediate (EC) → client, under the root's CRL that revokes another intermediate.
        await AssertAcceptedAsync(server.OfIntermediate);
    }

    [Fact]
    public async Task ClientCredentials_CertificateOfAnIntermediateCaTheRootsCrlRevokes_InvalidClient401AuditedRevoked()
    {
        // The client certificate itself is in no CRL; the intermediate CA that issued it is in its root's (RFC 5280 §6.3).
        await AssertRefusedAsync(server.OfRevokedIntermediate, "revoked");
    }

    [Fact]
    public async Task ClientCredentials_CertificateRevokedByAnRsaSignedCrl_InvalidClient401AuditedRevoked()
    {
        await AssertRefusedAsync(server.RevokedOfRsaCa, "revoked");
    }

    [Fact]
    public async Task ClientCredentials_CertificateOfAnRsaCaNotInItsCrl_TokenBoundToThatCertificate()
    {
        await AssertAcceptedAsync(server.OfRsaCa);
    }

    [Fact]
    public async Task Start_CrlFileNotACrl_RefusesToStartNamingTheKey()
    {
        var file = Path.Combine(Path.GetTempPath(), $"not-a-crl-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(file, "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n");
        try
        {
            var host = server.Mtls.StartServer(settings => settings["Mtls:CrlFile"] = file);

            var error = Record.Exception(() => host.Start());

            Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(error?.GetBaseException());
            Assert.Contains("Mtls:CrlFile", error!.GetBaseException().Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Start_CrlNotSignedByATrustedCa_RefusesToStartNamingTheKey()
    {
        var host = server.Mtls.StartServer(settings => settings["Mtls:CrlFile"] = server.ForgedCrlFile);

        var error = Record.Exception(() => host.Start());

        Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(error?.GetBaseException());
        Assert.Contains("Mtls:CrlFile", error!.GetBaseException().Message, StringComparison.Ordinal);
        Assert.Contains("not signed by a CA of Mtls:TrustedCaFile", error.GetBaseException().Message, StringComparison.Ordinal);
    }

    private async Task AssertAcceptedAsync(X509Certificate2 certificate)
    {
        var (status, body) = await server.Mtls.TokenAsync(server.Mtls.Mtls, "svc-pki", certificate);

        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(certificate), MutualTlsTests.Confirmation(body));
    }

    /// <summary>Refused at the token endpoint and at the introspection and revocation aliases alike.</summary>
    private async Task AssertRefusedAsync(X509Certificate2 certificate, string reason)
    {
        foreach (var endpoint in new[] { "token", "introspection", "revocation" })
        {
            var before = await server.Mtls.FailuresAsync("svc-pki", reason, endpoint);
            using var refusals = server.Mtls.CountRefusals();

            var (status, body) = endpoint == "token"
                ? await server.Mtls.TokenAsync(server.Mtls.Mtls, "svc-pki", certificate)
                : await server.Mtls.IntrospectOrRevokeAsync(server.Mtls.Mtls, endpoint, "svc-pki", certificate);

            Assert.True(status == HttpStatusCode.Unauthorized, $"{endpoint}: {body}");
            Assert.Equal("invalid_client", body.GetProperty("error").GetString());
            Assert.Equal(before + 1, await server.Mtls.FailuresAsync("svc-pki", reason, endpoint));
            Assert.True(refusals.Of(reason) >= 1, $"{endpoint}: no {reason} counted: {refusals}");
        }
    }

    /// <summary>MutualTlsTests' server, with three more CAs in the trusted bundle and their CRLs in Mtls:CrlFile.</summary>
    public sealed class CrlServer : IAsyncLifetime
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("mtls-crl-").FullName;
        private X509Certificate2 _liveCa = null!, _staleCa = null!, _reloadCa = null!, _rsaRoot = null!, _intermediate = null!, _revokedIntermediate = null!;
        private string _liveCrl = "";

        public MutualTlsTests.MutualTlsServer Mtls { get; } = new();

        public X509Certificate2 Good { get; private set; } = null!;

        public X509Certificate2 Revoked { get; private set; } = null!;

        public X509Certificate2 OfStaleCa { get; private set; } = null!;

        public X509Certificate2 OfReloadCa { get; private set; } = null!;

        /// <summary>Issued by an intermediate CA of the RSA root.</summary>
        public X509Certificate2 OfIntermediate { get; private set; } = null!;

        /// <summary>Issued by the intermediate CA that the RSA root's CRL revokes.</summary>
        public X509Certificate2 OfRevokedIntermediate { get; private set; } = null!;

        /// <summary>Issued by the RSA root itself.</summary>
        public X509Certificate2 OfRsaCa { get; private set; } = null!;

        /// <summary>Issued by the RSA root itself, and in its CRL.</summary>
        public X509Certificate2 RevokedOfRsaCa { get; private set; } = null!;

        public string ForgedCrlFile => Path.Combine(_directory, "forged.crl.pem");

        private string LiveCrlFile => Path.Combine(_directory, "live.crl.pem");

        /// <summary>The live CA's CRL file replaced by <paramref name="content"/>, or by its first CRL again.</summary>
        public async Task ReplaceLiveCrlAsync(string? content)
        {
            await File.WriteAllTextAsync(LiveCrlFile, content ?? _liveCrl);
            File.SetLastWriteTimeUtc(LiveCrlFile, DateTime.UtcNow.AddSeconds(content is null ? 20 : 10));
        }

        private string ReloadCrlFile => Path.Combine(_directory, "reload.crl.pem");

        public async Task InitializeAsync()
        {
            var now = DateTimeOffset.UtcNow;
            _liveCa = TestCertificates.Authority("CN=Identity CRL Live CA");
            _staleCa = TestCertificates.Authority("CN=Identity CRL Stale CA");
            _reloadCa = TestCertificates.Authority("CN=Identity CRL Reload CA");
            Good = TestCertificates.Client(_liveCa, "CN=orders.eu, O=Example");
            Revoked = TestCertificates.Client(_liveCa, "CN=orders.eu, O=Example");
            OfStaleCa = TestCertificates.Client(_staleCa, "CN=orders.eu, O=Example");
            OfReloadCa = TestCertificates.Client(_reloadCa, "CN=orders.eu, O=Example");
            _rsaRoot = TestCertificates.RsaAuthority("CN=Identity CRL RSA Root");
            _intermediate = TestCertificates.IntermediateAuthority(_rsaRoot, "CN=Identity CRL Intermediate");
            _revokedIntermediate = TestCertificates.IntermediateAuthority(_rsaRoot, "CN=Identity CRL Revoked Intermediate");
            OfIntermediate = TestCertificates.Client(_intermediate, "CN=orders.eu, O=Example");
            OfRevokedIntermediate = TestCertificates.Client(_revokedIntermediate, "CN=orders.eu, O=Example");
            OfRsaCa = TestCertificates.Client(_rsaRoot, "CN=orders.eu, O=Example");
            RevokedOfRsaCa = TestCertificates.Client(_rsaRoot, "CN=orders.eu, O=Example");

            // The intermediates are in the bundle: the server completes the chain from it (a client sends its leaf).
            var caFile = Path.Combine(_directory, "ca.pem");
            await File.WriteAllTextAsync(caFile, string.Concat(new[] { _liveCa, _staleCa, _reloadCa, _rsaRoot, _intermediate, _revokedIntermediate }
                .Select(c => c.ExportCertificatePem() + "\n")));
            var liveCrl = LiveCrlFile;
            _liveCrl = Crl(_liveCa, now.AddDays(-1), now.AddDays(7), Revoked);
            await File.WriteAllTextAsync(liveCrl, _liveCrl);
            var staleCrl = Path.Combine(_directory, "stale.crl"); // DER
            await File.WriteAllBytesAsync(staleCrl, CrlDer(_staleCa, now.AddDays(-8), now.AddDays(-1)));
            WriteReloadCrl(revoke: false);
            var rsaCrl = Path.Combine(_directory, "rsa-root.crl.pem");
            await File.WriteAllTextAsync(rsaCrl, Crl(_rsaRoot, now.AddDays(-1), now.AddDays(7), _revokedIntermediate, RevokedOfRsaCa));
            using (var forger = TestCertificates.Authority("CN=Identity CRL Live CA"))
            {
                await File.WriteAllTextAsync(ForgedCrlFile, Crl(forger, now.AddDays(-1), now.AddDays(7), Good));
            }

            Mtls.Extra = settings =>
            {
                settings["Mtls:TrustedCaFile"] = caFile;
                settings["Mtls:CrlFile"] = $"{liveCrl};{staleCrl}; {ReloadCrlFile};{rsaCrl}";
                settings["Mtls:CrlCheckInterval"] = "00:00:00";
            };
            await Mtls.InitializeAsync();
        }

        public void WriteReloadCrl(bool revoke)
        {
            var now = DateTimeOffset.UtcNow;
            File.WriteAllText(ReloadCrlFile, revoke ? Crl(_reloadCa, now.AddMinutes(-1), now.AddDays(7), OfReloadCa) : Crl(_reloadCa, now.AddDays(-1), now.AddDays(7)));
            // A last-write time that surely differs from the previous file's, whatever the file system's resolution.
            File.SetLastWriteTimeUtc(ReloadCrlFile, DateTime.UtcNow.AddSeconds(revoke ? 5 : 0));
        }

        private static string Crl(X509Certificate2 ca, DateTimeOffset thisUpdate, DateTimeOffset nextUpdate, params X509Certificate2[] revoked) =>
            new(PemEncoding.Write("X509 CRL", CrlDer(ca, thisUpdate, nextUpdate, revoked)));

        private static byte[] CrlDer(X509Certificate2 ca, DateTimeOffset thisUpdate, DateTimeOffset nextUpdate, params X509Certificate2[] revoked)
        {
            var builder = new CertificateRevocationListBuilder();
            foreach (var certificate in revoked)
            {
                builder.AddEntry(certificate, thisUpdate);
            }

            // An RSA CA signs its CRL with PKCS#1 v1.5 (RFC 4055 §5's sha256WithRSAEncryption), an EC one with ECDSA.
            var padding = ca.PublicKey.Oid.Value == "1.2.840.113549.1.1.1" ? RSASignaturePadding.Pkcs1 : null; // rsaEncryption
            return builder.Build(ca, BigInteger.One, nextUpdate, HashAlgorithmName.SHA256, padding, thisUpdate);
        }

        public async Task DisposeAsync()
        {
            await Mtls.DisposeAsync();
            foreach (var certificate in new[] { _liveCa, _staleCa, _reloadCa, Good, Revoked, OfStaleCa, OfReloadCa,
                _rsaRoot, _intermediate, _revokedIntermediate, OfIntermediate, OfRevokedIntermediate, OfRsaCa, RevokedOfRsaCa })
            {
                certificate.Dispose();
            }

            Directory.Delete(_directory, recursive: true);
        }
    }
}
