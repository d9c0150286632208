using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// The data-protection key ring (which protects the token signing keys) encrypted at rest with a certificate: what a
/// database backup holds is useless without the certificate's private key, which lives in files on the servers.
/// </summary>
public sealed class KeyRingProtectionTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>, IAsyncLifetime
{
    private readonly SqliteTestDatabase _database = new();
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "identity-keyring-tests", Guid.NewGuid().ToString("n"));

    public async Task InitializeAsync()
    {
        await _database.InitializeAsync();
        Directory.CreateDirectory(_folder);
    }

    public async Task DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>A self-signed RSA certificate and its key, written as PEM files as an operator would mount them.</summary>
    private (string Certificate, string Key) NewCertificate(string name)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
        var files = (Path.Combine(_folder, name + ".crt"), Path.Combine(_folder, name + ".key"));
        File.WriteAllText(files.Item1, certificate.ExportCertificatePem());
        File.WriteAllText(files.Item2, rsa.ExportPkcs8PrivateKeyPem());
        return files;
    }

    /// <summary>A server on this test's own, empty database (so that no unprotected key was written before).</summary>
    private IdentityServerHost Server(Action<Dictionary<string, string?>> protection) => fixture.StartServer(settings =>
    {
        settings["Database:ConnectionString"] = _database.ConnectionString;
        settings["DataProtection:AllowUnprotectedKeys"] = "false";
        protection(settings);
    });

    private static Action<Dictionary<string, string?>> With((string Certificate, string Key) current, (string Certificate, string Key)? previous = null) =>
        settings =>
        {
            settings["DataProtection:CertificateFile"] = current.Certificate;
            settings["DataProtection:KeyFile"] = current.Key;
            if (previous is { } old)
            {
                settings["DataProtection:PreviousCertificates:0:CertificateFile"] = old.Certificate;
                settings["DataProtection:PreviousCertificates:0:KeyFile"] = old.Key;
            }
        };

    private async Task<string> TokenAsync(HttpClient client) =>
        (await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read"), HttpStatusCode.OK))
        .GetProperty("access_token").GetString()!;

    [Fact]
    public async Task WithCertificate_KeyRingEncryptedAtRest_RestartAndCertificateRotationKeepTheKeys()
    {
        var first = NewCertificate("ring-1");
        string token, jwks;
        await using (var server = Server(With(first)))
        {
            var client = server.Start();
            token = await TokenAsync(client);
            jwks = await client.GetStringAsync("/.well-known/jwks");

            await using var scope = server.Services.CreateAsyncScope();
            var rows = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().DataProtectionKeys.AsNoTracking().ToListAsync();
            Assert.NotEmpty(rows);
            Assert.All(rows, row =>
            {
                Assert.Contains("<EncryptedData", row.Xml, StringComparison.Ordinal);
                Assert.DoesNotContain("<masterKey", row.Xml, StringComparison.Ordinal);
            });
        }

        // A restart with the same certificate reads the ring: same signing keys, earlier tokens still valid.
        await using (var restarted = Server(With(first)))
        {
            var client = restarted.Start();
            Assert.Equal(jwks, await client.GetStringAsync("/.well-known/jwks"));
            Assert.True((await client.ValidateAccessTokenAsync(token, ServerFixture<SqliteTestDatabase>.Api)).IsValid);
        }

        // A new certificate, the old one kept as previous: the ring written under the old one is still read.
        await using var rotated = Server(With(NewCertificate("ring-2"), previous: first));
        var rotatedClient = rotated.Start();
        Assert.Equal(jwks, await rotatedClient.GetStringAsync("/.well-known/jwks"));
        Assert.True((await rotatedClient.ValidateAccessTokenAsync(await TokenAsync(rotatedClient), ServerFixture<SqliteTestDatabase>.Api)).IsValid);
    }

    [Fact]
    public async Task WrongCertificate_RefusesToStart_SayingTheKeysCannotBeDecrypted()
    {
        await using (var server = Server(With(NewCertificate("ring-a"))))
        {
            server.Start();
        }

        await using var wrong = Server(With(NewCertificate("ring-b")));
        var error = Assert.ThrowsAny<Exception>(() => wrong.Start());
        Assert.Contains("DataProtection:PreviousCertificates", Flatten(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoCertificateAndNoOptOut_RefusesToStart_NamingTheSettings()
    {
        await using var server = Server(_ => { });
        var error = Assert.ThrowsAny<Exception>(() => server.Start());
        Assert.Contains("DataProtection:CertificateFile", Flatten(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CertificateWithoutKey_RefusesToStart_NamingTheSetting()
    {
        var (certificate, _) = NewCertificate("ring-nokey");
        await using var server = Server(s => s["DataProtection:CertificateFile"] = certificate);
        var error = Assert.ThrowsAny<Exception>(() => server.Start());
        Assert.Contains("set both CertificateFile and KeyFile", Flatten(error), StringComparison.Ordinal);
    }

    private static string Flatten(Exception error) => error.ToString();
}
