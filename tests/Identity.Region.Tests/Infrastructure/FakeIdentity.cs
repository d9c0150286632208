using System.Collections.Concurrent;
using System.Text;
using Identity.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>
/// A test double of Identity's token endpoint and sync API on a real Kestrel socket (127.0.0.1, a free port): it
/// issues a token to the region's client (client_secret_basic) and pages <see cref="Users"/> by user id.
/// </summary>
public sealed class FakeIdentity : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _tokens;

    private FakeIdentity(WebApplication app) => _app = app;

    /// <summary>The region's users as Identity has them now.</summary>
    public List<UserChanged> Users { get; } = [];

    /// <summary>Every sync request: its <c>after</c>, <c>limit</c> and Authorization header.</summary>
    public ConcurrentQueue<(string? After, string? Limit, string? Authorization)> SyncRequests { get; } = new();

    /// <summary>The access tokens issued so far.</summary>
    public ConcurrentQueue<string> IssuedTokens { get; } = new();

    /// <summary>Expire every issued token once: the next sync request answers 401.</summary>
    public bool ExpireTokensOnce { get; set; }

    /// <summary>Called with the page about to be served, before it is served (a test can deliver an event meanwhile).</summary>
    public Func<int, Task>? BeforePage { get; set; }

    public Uri Authority => new(_app.Urls.Single().TrimEnd('/') + "/");

    public static async Task<FakeIdentity> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeIdentity(app);
        app.MapPost("/connect/token", fake.TokenAsync);
        app.MapGet("/sync/v1/regions/{region}/users", fake.PageAsync);
        await app.StartAsync();
        return fake;
    }

    private async Task<IResult> TokenAsync(HttpRequest request)
    {
        var form = await request.ReadFormAsync();
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(
            $"{Uri.EscapeDataString(ReplicaHost.ClientId)}:{Uri.EscapeDataString(ReplicaHost.ClientSecret)}"));
        if (request.Headers.Authorization != expected)
        {
            return Results.Json(new { error = "invalid_client" }, statusCode: 401);
        }

        if (form["grant_type"] != "client_credentials" || form["scope"] != IdentityRegionOptions.SyncScope)
        {
            return Results.Json(new { error = "invalid_request" }, statusCode: 400);
        }

        var token = $"token-{Interlocked.Increment(ref _tokens)}";
        IssuedTokens.Enqueue(token);
        return Results.Json(new { access_token = token, token_type = "Bearer", expires_in = 600 });
    }

    private async Task<IResult> PageAsync(string region, HttpRequest request)
    {
        string? after = request.Query["after"];
        string? limit = request.Query["limit"];
        string? authorization = request.Headers.Authorization;
        SyncRequests.Enqueue((after, limit, authorization));

        if (ExpireTokensOnce)
        {
            ExpireTokensOnce = false;
            IssuedTokens.Clear();
        }

        if (region != ReplicaHost.Region || authorization is null || !IssuedTokens.Any(t => authorization == "Bearer " + t))
        {
            return Results.StatusCode(401);
        }

        if (BeforePage is { } beforePage)
        {
            await beforePage(SyncRequests.Count);
        }

        var remaining = Users.OrderBy(u => u.UserId, StringComparer.Ordinal)
            .Where(u => after is null || string.CompareOrdinal(u.UserId, after) > 0)
            .ToList();
        var page = remaining.Take(int.Parse(limit ?? "100")).ToList();
        return Results.Json(new UserPage { Users = page, Next = remaining.Count > page.Count ? page[^1].UserId : null });
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
