using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>
/// A token endpoint on a real Kestrel socket (127.0.0.1, a free port) that fails as a test asks: the first
/// <see cref="FailuresBeforeSuccess"/> requests answer 503, then it issues <c>token-N</c> to the client with
/// <see cref="ClientSecret"/> (client_secret_basic) or to an assertion signed by <see cref="AssertionKey"/>.
/// <c>/api/echo</c> answers the Authorization header it received.
/// </summary>
public sealed class FakeTokenEndpoint : IAsyncDisposable
{
    public const string ClientId = "region-eu-api";
    public const string ClientSecret = "a-token-client-secret+/:";

    private readonly WebApplication _app;
    private int _requests;
    private int _tokens;

    private FakeTokenEndpoint(WebApplication app) => _app = app;

    public Uri Authority => new(_app.Urls.Single().TrimEnd('/') + "/");

    /// <summary>Requests that reached the token endpoint, answered or not.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Requests answered 503 before the endpoint works; <see cref="int.MaxValue"/> keeps it down.</summary>
    public int FailuresBeforeSuccess { get; set; }

    /// <summary>How long each answer takes (so concurrent callers really overlap).</summary>
    public TimeSpan Latency { get; set; }

    public int ExpiresIn { get; set; } = 600;

    /// <summary>When set, the client authenticates with private_key_jwt signed by this key.</summary>
    public RSA? AssertionKey { get; set; }

    /// <summary>The <c>client_assertion</c> of every request, answered or not (empty without one).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Assertions { get; } = new();

    /// <summary>The claims of the last client assertion whose signature verified.</summary>
    public JsonElement? LastAssertion { get; private set; }

    public static async Task<FakeTokenEndpoint> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeTokenEndpoint(app);
        app.MapPost("/connect/token", fake.TokenAsync);
        app.MapGet("/api/echo", (HttpRequest request) => Results.Text(request.Headers.Authorization.ToString()));
        await app.StartAsync();
        return fake;
    }

    private async Task<IResult> TokenAsync(HttpRequest request)
    {
        var attempt = Interlocked.Increment(ref _requests);
        var form = await request.ReadFormAsync();
        Assertions.Enqueue(form["client_assertion"].ToString());
        await Task.Delay(Latency);
        if (attempt <= FailuresBeforeSuccess)
        {
            return Results.StatusCode(503);
        }

        if (!Authenticated(request, form))
        {
            return Results.Json(new { error = "invalid_client" }, statusCode: 401);
        }

        if (form["grant_type"] != "client_credentials")
        {
            return Results.Json(new { error = "unsupported_grant_type" }, statusCode: 400);
        }

        return Results.Json(new { access_token = $"token-{Interlocked.Increment(ref _tokens)}", token_type = "Bearer", expires_in = ExpiresIn });
    }

    private bool Authenticated(HttpRequest request, IFormCollection form)
    {
        if (AssertionKey is null)
        {
            return request.Headers.Authorization == "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(
                $"{Uri.EscapeDataString(ClientId)}:{Uri.EscapeDataString(ClientSecret)}"));
        }

        var parts = form["client_assertion"].ToString().Split('.');
        if (parts.Length != 3 || form["client_id"] != ClientId)
        {
            return false;
        }

        var valid = AssertionKey.VerifyData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64Url(parts[2]), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (valid)
        {
            LastAssertion = JsonDocument.Parse(Base64Url(parts[1])).RootElement.Clone();
        }

        return valid;
    }

    private static byte[] Base64Url(string value)
    {
        var base64 = value.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '='));
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>A clock a test moves by hand; timers still run on real time.</summary>
public sealed class TestClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public TestClock()
        : this(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero))
    {
    }

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
