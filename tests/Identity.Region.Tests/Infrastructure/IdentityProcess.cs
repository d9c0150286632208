using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>
/// The real Identity.Server as its own process (the dll built beside these tests, <c>dotnet Identity.Server.dll</c>) on
/// SQLite in a temporary folder, with an mTLS port, so that a test can kill it and start it again on the same
/// ports and database. Clients: <c>orders-us</c> (tls_client_auth, subject <see cref="ServiceSubject"/>, scope
/// <c>orders.read</c> for the resource <see cref="Audience"/>) and <c>platform-admin</c> (a secret, <c>identity.admin</c>).
/// </summary>
public sealed class IdentityProcess : IAsyncDisposable
{
    public const string Audience = "https://orders.eu.example";
    public const string ServiceSubject = "CN=orders.us, O=Example";

    private readonly string _directory = Directory.CreateTempSubdirectory("identity-process-").FullName;
    private readonly string _adminSecret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
    private readonly int _port = TestPorts.Next();
    private readonly int _mtlsPort = TestPorts.Next();
    private readonly X509Certificate2 _serverCertificate = TestCertificates.Server();
    private readonly StringBuilder _output = new();
    private Process? _process;

    private IdentityProcess(X509Certificate2 servicesCa)
    {
        ServicesCaFile = Path.Combine(_directory, "services-ca.pem");
        File.WriteAllText(ServicesCaFile, servicesCa.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_directory, "mtls.pem"), _serverCertificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_directory, "mtls.key"), _serverCertificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    public Uri Authority => new($"http://127.0.0.1:{_port}/");

    /// <summary>The CA bundle Identity trusts for tls_client_auth (the regional API trusts the same).</summary>
    public string ServicesCaFile { get; }

    /// <summary>What the process wrote, for a failing test's message.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>A new Identity (its own folder, database and ports), started.</summary>
    public static async Task<IdentityProcess> LaunchAsync(X509Certificate2 servicesCa)
    {
        var identity = new IdentityProcess(servicesCa);
        await identity.StartAsync();
        return identity;
    }

    /// <summary>Starts the process (again, after <see cref="KillAsync"/>: same ports, same database) and waits for discovery.</summary>
    public async Task StartAsync()
    {
        var start = new ProcessStartInfo("dotnet", $"\"{ServerDll}\" --urls http://127.0.0.1:{_port}")
        {
            WorkingDirectory = Path.GetDirectoryName(ServerDll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in Settings())
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Identity.Server exited during start-up ({_process.ExitCode}):\n{Output}");
            }

            try
            {
                if ((await http.GetAsync(new Uri(Authority, ".well-known/openid-configuration"))).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"Identity.Server did not answer discovery within 90 s:\n{Output}");
    }

    /// <summary>Kills the process (no graceful shutdown), as a crash or a lost machine would.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>A client-credentials token for <c>orders-us</c> over mutual TLS with <paramref name="certificate"/> (RFC 8705 §2).</summary>
    public async Task<string> BoundTokenAsync(X509Certificate2 certificate)
    {
        var serverCertificate = _serverCertificate;
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                ClientCertificates = new X509CertificateCollection { certificate },
            },
        };
        using var http = new HttpClient(handler);
        using var response = await http.PostAsync(new Uri($"https://localhost:{_mtlsPort}/connect/token"), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "orders-us",
            ["scope"] = "orders.read",
        }));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return response.IsSuccessStatusCode
            ? body.GetProperty("access_token").GetString()!
            : throw new InvalidOperationException($"No token: {(int)response.StatusCode} {body}");
    }

    /// <summary>Rotates the access-token key through the admin API (<c>POST /admin/v1/keys/rotate</c>); the new key signs from now.</summary>
    public async Task RotateAccessTokenKeyAsync()
    {
        using var http = new HttpClient { BaseAddress = Authority };
        var credentials = Convert.ToBase64String(Encoding.UTF8.GetBytes($"platform-admin:{Uri.EscapeDataString(_adminSecret)}"));
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "identity.admin" }),
        };
        tokenRequest.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", credentials);
        using var tokenResponse = await http.SendAsync(tokenRequest);
        var token = (await tokenResponse.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString();

        using var rotate = new HttpRequestMessage(HttpMethod.Post, "admin/v1/keys/rotate")
        {
            Content = JsonContent.Create(new { algorithms = new[] { "ES256" }, revokePrevious = false }),
        };
        rotate.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var rotated = await http.SendAsync(rotate);
        if (!rotated.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Key rotation refused: {(int)rotated.StatusCode} {await rotated.Content.ReadAsStringAsync()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        _serverCertificate.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Dictionary<string, string> Settings()
    {
        var adminSecretFile = Path.Combine(_directory, "platform-admin.secret");
        File.WriteAllText(adminSecretFile, _adminSecret);
        return new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DataProtection:AllowUnprotectedKeys"] = "true",
            ["Database:Provider"] = "Sqlite",
            ["Database:ConnectionString"] = $"Data Source={Path.Combine(_directory, "identity.db")}",
            ["Oidc:Issuer"] = Authority.AbsoluteUri,
            ["Oidc:AllowInsecureHttp"] = "true",
            ["Throttling:ExemptLoopback"] = "true",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Mtls:Port"] = _mtlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mtls:CertificateFile"] = Path.Combine(_directory, "mtls.pem"),
            ["Mtls:CertificateKeyFile"] = Path.Combine(_directory, "mtls.key"),
            ["Mtls:TrustedCaFile"] = ServicesCaFile,
            ["Oidc:Scopes:0:Name"] = "orders.read",
            ["Oidc:Scopes:0:Resources:0"] = Audience,
            ["Oidc:Clients:0:ClientId"] = "orders-us",
            ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:0:Scopes:0"] = "orders.read",
            ["Oidc:Clients:0:TlsClientAuthSubjectDn"] = "CN=orders.us,O=Example",
            // Long enough to outlive the staleness bound the tests move their clock past.
            ["Oidc:Clients:0:AccessTokenLifetime"] = "04:00:00",
            ["Oidc:Clients:1:ClientId"] = "platform-admin",
            ["Oidc:Clients:1:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:1:Scopes:0"] = "identity.admin",
            ["Oidc:Clients:1:PlatformAdmin"] = "true",
            ["Oidc:Clients:1:SecretFile"] = adminSecretFile,
        };
    }

    /// <summary>The server built beside these tests (same configuration), through the ProjectReference that builds it first.</summary>
    private static string ServerDll
    {
        get
        {
            var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var (framework, configuration) = (output.Name, output.Parent!.Name);
            var root = output;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "Identity.sln")))
            {
                root = root.Parent;
            }

            var dll = Path.Combine(root!.FullName, "src", "Identity.Server", "bin", configuration, framework, "Identity.Server.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build Identity.Server ({configuration}) first: {dll} is missing.");
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

}
