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
/// its nextUpdate, one replaced while the server runs.
/// </summary>
public sealed class MutualTlsCrlTests(MutualTlsCrlTests.CrlServer server) : IClassFixture<MutualTlsCrlTests.CrlServer>
{
    [Fact]
    public async Task ClientCredentials_CertificateNotInTheCrl_TokenBoundToThatCertificate()
    {
        var (status, body) = await server.Mtls.TokenAsync(server.Mtls.Mtls, "svc-pki", server.Good);

        Assert.True(status == HttpStatusCode.OK, body.ToString());
        Assert.Equal(TestCertificates.Thumbprint(server.Good), MutualTlsTests.Confirmation(body));
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

    private async Task AssertRefusedAsync(X509Certificate2 certificate, string reason)
    {
        var before = await server.Mtls.FailuresAsync("svc-pki", reason);
        using var refusals = server.Mtls.CountRefusals();

        var (status, body) = await server.Mtls.TokenAsync(server.Mtls.Mtls, "svc-pki", certificate);

        Assert.True(status == HttpStatusCode.Unauthorized, body.ToString());
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.Equal(before + 1, await server.Mtls.FailuresAsync("svc-pki", reason));
        Assert.True(refusals.Of(reason) >= 1, $"no {reason} counted: {refusals}");
    }

    /// <summary>MutualTlsTests' server, with three more CAs in the trusted bundle and their CRLs in Mtls:CrlFile.</summary>
    public sealed class CrlServer : IAsyncLifetime
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("mtls-crl-").FullName;
        private X509Certificate2 _liveCa = null!, _staleCa = null!, _reloadCa = null!;
        private string _liveCrl = "";

        public MutualTlsTests.MutualTlsServer Mtls { get; } = new();

        public X509Certificate2 Good { get; private set; } = null!;

        public X509Certificate2 Revoked { get; private set; } = null!;

        public X509Certificate2 OfStaleCa { get; private set; } = null!;

        public X509Certificate2 OfReloadCa { get; private set; } = null!;

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

            var caFile = Path.Combine(_directory, "ca.pem");
            await File.WriteAllTextAsync(caFile, string.Concat(new[] { _liveCa, _staleCa, _reloadCa }.Select(c => c.ExportCertificatePem() + "\n")));
            var liveCrl = LiveCrlFile;
            _liveCrl = Crl(_liveCa, now.AddDays(-1), now.AddDays(7), Revoked);
            await File.WriteAllTextAsync(liveCrl, _liveCrl);
            var staleCrl = Path.Combine(_directory, "stale.crl"); // DER
            await File.WriteAllBytesAsync(staleCrl, CrlDer(_staleCa, now.AddDays(-8), now.AddDays(-1)));
            WriteReloadCrl(revoke: false);
            using (var forger = TestCertificates.Authority("CN=Identity CRL Live CA"))
            {
                await File.WriteAllTextAsync(ForgedCrlFile, Crl(forger, now.AddDays(-1), now.AddDays(7), Good));
            }

            Mtls.Extra = settings =>
            {
                settings["Mtls:TrustedCaFile"] = caFile;
                settings["Mtls:CrlFile"] = $"{liveCrl};{staleCrl}; {ReloadCrlFile}";
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

            return builder.Build(ca, BigInteger.One, nextUpdate, HashAlgorithmName.SHA256, thisUpdate: thisUpdate);
        }

        public async Task DisposeAsync()
        {
            await Mtls.DisposeAsync();
            foreach (var certificate in new[] { _liveCa, _staleCa, _reloadCa, Good, Revoked, OfStaleCa, OfReloadCa })
            {
                certificate.Dispose();
            }

            Directory.Delete(_directory, recursive: true);
        }
    }
}
