using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Identity.Region.Tests.Infrastructure;
using Identity.Server.IntegrationTests.Connect;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// TLS session resumption (RFC 8446 §2.2) and the mTLS port, seen from a client that shows whether it resumed:
/// OpenSSL's <c>s_client</c>, which saves the session of one connection (<c>-sess_out</c>) and offers it on the next
/// (<c>-sess_in</c>), and prints <c>Reused</c> when the server took it. A resumed session carries the client
/// certificate of the handshake that made it (RFC 8446 §2.2: the PSK stands for that handshake's authentication).
/// </summary>
public sealed class MutualTlsResumptionTests(MutualTlsTests.MutualTlsServer server)
    : IClassFixture<MutualTlsTests.MutualTlsServer>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mtls-resume-").FullName;

    [Fact]
    public async Task ClientCredentials_NewConnectionResumingTheClientsSession_ResumedAndTokenBoundToItsCertificate()
    {
        // Arrange: a first connection with the certificate; its session saved.
        var session = Path.Combine(_directory, "session.pem");
        var first = await OpenSslAsync(server.Mtls, $"-sess_out {session}", TokenRequest("svc-pki"));
        Assert.Contains("\"access_token\"", first, StringComparison.Ordinal);

        // Act: a second connection offering that session.
        var second = await OpenSslAsync(server.Mtls, $"-sess_in {session}", TokenRequest("svc-pki"));

        // Assert: the server resumed the session (no second full handshake), and the token is bound to the certificate
        // of the handshake that made it, computed here from the certificate (RFC 8705 §3.1).
        Assert.Contains("Reused, TLSv1.3", second, StringComparison.Ordinal);
        Assert.Equal(TestCertificates.Thumbprint(server.PkiClient), Confirmation(second));
    }

    [Fact]
    public async Task MainPort_OfferedASessionMadeOnTheMtlsPort_NoCertificateSoNoToken()
    {
        // Arrange: a session made on the mTLS port with the client's certificate (the same server certificate serves
        // both ports in this fixture, the case where a session could cross).
        var session = Path.Combine(_directory, "session.pem");
        var first = await OpenSslAsync(server.Mtls, $"-sess_out {session}", TokenRequest("svc-pki"));
        Assert.Contains("\"access_token\"", first, StringComparison.Ordinal);

        // Act: that session offered on the main (browser) port, with a token request that only the certificate could
        // authenticate.
        var main = await OpenSslAsync(server.Main, $"-sess_in {session}", TokenRequest("svc-pki"));

        // Assert: the session was not resumed there, so no certificate came with it and no token was issued.
        Assert.DoesNotContain("Reused,", main, StringComparison.Ordinal);
        Assert.Contains("HTTP/1.1 ", main, StringComparison.Ordinal);
        Assert.DoesNotContain("\"access_token\"", main, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string TokenRequest(string clientId)
    {
        var body = $"grant_type=client_credentials&client_id={clientId}&scope=api.read";
        return $"POST /connect/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + $"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
    }

    /// <summary>
    /// One connection with <c>openssl s_client</c> presenting the PKI client certificate when asked, sending
    /// <paramref name="request"/>; returns what it printed (the session summary, then the HTTP response).
    /// </summary>
    private async Task<string> OpenSslAsync(Uri port, string sessionOption, string request)
    {
        var certificate = Path.Combine(_directory, "client.pem");
        var key = Path.Combine(_directory, "client.key");
        if (!File.Exists(certificate))
        {
            await File.WriteAllTextAsync(certificate, server.PkiClient.ExportCertificatePem());
            await File.WriteAllTextAsync(key, server.PkiClient.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        }

        using var process = Process.Start(new ProcessStartInfo("openssl",
            $"s_client -connect localhost:{port.Port} -servername localhost -cert {certificate} -key {key} -ign_eof {sessionOption}")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(request);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return await output + await errors;
    }

    private static string? Confirmation(string opensslOutput)
    {
        var jwt = Regex.Match(opensslOutput, "\"access_token\"\\s*:\\s*\"([^\"]+)\"").Groups[1].Value;
        var payload = JsonDocument.Parse(Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(jwt.Split('.')[1]))).RootElement;
        return payload.GetProperty("cnf").GetProperty("x5t#S256").GetString();
    }
}
