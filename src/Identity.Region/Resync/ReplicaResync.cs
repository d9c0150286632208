using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Identity.Contracts;
using Identity.Region.Replica;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Identity.Region.Resync;

/// <summary>What a complete resync did.</summary>
public sealed record ReplicaResyncResult(int Users, int Pages, int Applied, int Removed);

/// <summary>Rebuilds the replica from Identity's sync API; used at first start and on demand.</summary>
public interface IReplicaResync
{
    Task<ReplicaResyncResult> RunAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// Pages through <c>GET /sync/v1/regions/{region}/users</c> with a client-credentials token and applies every
/// snapshot through <see cref="ReplicaWriter"/> (so an event newer than the page wins), then removes the users
/// Identity no longer has for this region.
/// </summary>
public sealed class ReplicaResync(
    HttpClient http,
    RegionReplicaDbContext db,
    ReplicaWriter writer,
    ResyncGate gate,
    IOptions<IdentityRegionOptions> options,
    TimeProvider time,
    ILogger<ReplicaResync> logger) : IReplicaResync
{
    private IdentityRegionOptions Options => options.Value;

    public async Task<ReplicaResyncResult> RunAsync(CancellationToken cancellationToken = default)
    {
        // One resync at a time in this process: an on-demand run waits for the start-up one.
        await gate.Semaphore.WaitAsync(cancellationToken);
        try
        {
            return await RunExclusiveAsync(cancellationToken);
        }
        finally
        {
            gate.Semaphore.Release();
        }
    }

    private async Task<ReplicaResyncResult> RunExclusiveAsync(CancellationToken cancellationToken)
    {
        var startedAt = time.GetUtcNow().UtcDateTime;
        var token = await RequestTokenAsync(cancellationToken);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var (pages, applied) = (0, 0);
        string? cursor = null;

        do
        {
            UserPage page;
            (page, token) = await GetPageAsync(cursor, token, cancellationToken);
            pages++;
            seen.UnionWith(page.Users.Select(u => u.UserId));
            // A page is one transaction.
            applied += (await writer.ApplyAsync(page.Users, cancellationToken)).Count(o => o == ReplicaOutcome.Applied);

            if (page.Next is not null && page.Next == cursor)
            {
                throw new InvalidOperationException($"The sync API returned the cursor '{cursor}' twice; the resync stopped.");
            }

            cursor = page.Next;
        }
        while (cursor is not null);

        var removed = await RemoveAbsentAsync(seen, startedAt, cancellationToken);
        await RecordAsync(seen.Count, cancellationToken);
        logger.LogInformation("Replica resync for region {Region}: {Users} users in {Pages} pages, {Applied} applied, {Removed} removed.",
            Options.Region, seen.Count, pages, applied, removed);
        return new ReplicaResyncResult(seen.Count, pages, applied, removed);
    }

    /// <summary>
    /// The sync was complete, so a live replica user it did not list no longer exists for this region — unless an
    /// event wrote the row after the sync started (a user created meanwhile may sit in a page already read). Such a
    /// user is tombstoned with its stored version, and only if that version is still the one read here: the
    /// conditional update leaves alone whatever an event changed in between.
    /// </summary>
    private async Task<int> RemoveAbsentAsync(HashSet<string> seen, DateTime startedAt, CancellationToken cancellationToken)
    {
        var candidates = await db.ReplicaUsers.AsNoTracking()
            .Where(u => !u.Deleted && u.UpdatedAt < startedAt)
            .Select(u => new { u.UserId, u.Version })
            .ToListAsync(cancellationToken);

        var removed = 0;
        foreach (var user in candidates.Where(u => !seen.Contains(u.UserId)))
        {
            if (await writer.TombstoneAbsentAsync(user.UserId, user.Version, startedAt, cancellationToken))
            {
                removed++;
            }
        }

        return removed;
    }

    private async Task RecordAsync(int users, CancellationToken cancellationToken)
    {
        var state = await db.ReplicaState.SingleOrDefaultAsync(s => s.Id == ReplicaState.SingletonId, cancellationToken);
        if (state is null)
        {
            state = new ReplicaState();
            db.ReplicaState.Add(state);
        }

        state.LastFullResyncAt = time.GetUtcNow().UtcDateTime;
        state.LastFullResyncUsers = users;
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>A page; on 401 (the token expired during a long sync) one new token and one more try.</summary>
    private async Task<(UserPage Page, string Token)> GetPageAsync(string? cursor, string token, CancellationToken cancellationToken)
    {
        var query = $"limit={Options.PageSize}" + (cursor is null ? "" : $"&after={Uri.EscapeDataString(cursor)}");
        var uri = new Uri(Authority, $"sync/v1/regions/{Uri.EscapeDataString(Options.Region)}/users?{query}");

        for (var attempt = 1; ; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request, cancellationToken);
            if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 1)
            {
                token = await RequestTokenAsync(cancellationToken);
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new HttpRequestException($"The sync API answered {(int)response.StatusCode} for {uri.AbsolutePath}.", null, response.StatusCode);
            }

            var page = await response.Content.ReadFromJsonAsync<UserPage>(JsonSerializerOptions.Web, cancellationToken)
                ?? throw new InvalidOperationException("The sync API returned an empty body.");
            return (page, token);
        }
    }

    /// <summary>Client credentials (RFC 6749 §4.4) with <c>client_secret_basic</c>: id and secret form-encoded, then Base64 (§2.3.1).</summary>
    private async Task<string> RequestTokenAsync(CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Authority, "connect/token"))
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["scope"] = IdentityRegionOptions.SyncScope,
            }),
        };
        var credentials = $"{Uri.EscapeDataString(Options.ClientId)}:{Uri.EscapeDataString(Options.ClientSecret)}";
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));

        using var response = await http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            // The error code only (RFC 6749 §5.2), never the secret.
            var error = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new HttpRequestException(
                $"Identity refused a sync token to client '{Options.ClientId}': {(int)response.StatusCode} {ErrorCode(error)}.", null, response.StatusCode);
        }

        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken));
        return body.RootElement.TryGetProperty("access_token", out var accessToken) && accessToken.GetString() is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException("The token response has no access_token.");
    }

    private static string ErrorCode(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.TryGetProperty("error", out var error) ? error.GetString() ?? "" : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }

    /// <summary>The authority with a trailing slash, so relative paths append to it.</summary>
    private Uri Authority => Options.Authority!.AbsoluteUri.EndsWith('/') ? Options.Authority : new Uri(Options.Authority.AbsoluteUri + "/");
}

/// <summary>Serialises resyncs within the process (a singleton).</summary>
public sealed class ResyncGate : IDisposable
{
    public SemaphoreSlim Semaphore { get; } = new(1, 1);

    public void Dispose() => Semaphore.Dispose();
}
