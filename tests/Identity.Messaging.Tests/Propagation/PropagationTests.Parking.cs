using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Identity.Contracts;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;

namespace Identity.Messaging.Tests.Propagation;

/// <summary>
/// Poison rows: parked (dead-lettered) instead of failing every round, the rows behind them published, re-queued by a
/// platform administrator. Each test removes the rows it parked, which would otherwise count as unsent for the others.
/// </summary>
public sealed partial class PropagationTests
{
    [Fact]
    public async Task UnreadableRows_ParkedAtOnce_RowsBehindThemPublishedAndTheServerStaysHealthy()
    {
        var account = await CreateAccountAsync("p-eu");
        await fixture.StopDispatcherAsync();
        var poison = new List<long>();
        try
        {
            // First in line: a type no contract has (a newer version wrote it), and a payload that is not its contract.
            poison.Add(await InsertRowAsync(account, "p-eu", "UserRenamedV2", """{"userId":"x"}"""));
            poison.Add(await InsertRowAsync(account, "p-eu", nameof(UserChanged), """{"userId": "ada-secret@example.test", """));
            var (user, _) = await CreateUserAsync(account, "behind-the-poison");

            await fixture.StartDispatcherAsync();

            await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Deleted: false }, TimeSpan.FromSeconds(30));
            var rows = await RowsAsync(poison);
            Assert.All(rows, r => Assert.NotNull(r.ParkedAt));
            Assert.All(rows, r => Assert.Null(r.SentAt));
            Assert.Equal(new[] { ParkReasons.UnknownType, ParkReasons.UnreadablePayload }, rows.Select(r => r.ParkedReason!));
            Assert.All(rows, r => Assert.Equal(0, r.Attempts));
            Assert.DoesNotContain("ada-secret", rows[1].LastError!, StringComparison.Ordinal);

            var status = await fixture.Platform.GetFromJsonAsync<JsonElement>("/admin/v1/outbox");
            var listed = status.GetProperty("parkedRows").EnumerateArray().Where(r => poison.Contains(r.GetProperty("id").GetInt64())).ToList();
            Assert.Equal(2, listed.Count);
            Assert.All(listed, r => Assert.False(string.IsNullOrEmpty(r.GetProperty("lastError").GetString())));
            Assert.Contains(status.GetProperty("parkedByRegion").EnumerateArray(),
                r => r.GetProperty("region").GetString() == "p-eu" && r.GetProperty("parked").GetInt32() >= 2);
            // Nothing failed that the broker could be blamed for: readiness does not degrade.
            await ReadinessBecomesAsync(fixture.Dispatcher!.CreateClient(), "Healthy");
        }
        finally
        {
            await DeleteRowsAsync(poison);
            if (fixture.Dispatcher is null)
            {
                await fixture.StartDispatcherAsync();
            }
        }
    }

    [Fact]
    public async Task RowTheBrokerRefusesWhileItTakesOthers_ParkedAfterMaxAttempts_TheOthersFlow()
    {
        var account = await CreateAccountAsync("p-eu");
        var (user, etag) = await CreateUserAsync(account, "flowing");
        await fixture.StopDispatcherAsync();
        // A region the broker has no rights for (upper case is outside identity's permissions): its sends fail, the
        // other regions' go through.
        var refused = await InsertRowAsync(account, "P-REFUSED", nameof(UserChanged), Snapshot(account, "refused-" + _unique));
        try
        {
            await using var dispatcher = fixture.StartExtraDispatcher(new Dictionary<string, string?>
            {
                ["Outbox:MaxAttempts"] = "2", ["Outbox:PublishTimeout"] = "00:00:02",
            });
            var renames = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while ((await RowsAsync([refused]))[0].ParkedAt is null)
            {
                Assert.True(clock.Elapsed < Patience, "the refused row was never parked");
                var patch = await SendAsync(HttpMethod.Patch, $"/admin/v1/accounts/{account}/users/{user}", new { displayName = $"flowing {++renames}" }, etag);
                Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
                etag = patch.Headers.ETag!.Tag;
                await Task.Delay(300);
            }

            var row = (await RowsAsync([refused]))[0];
            Assert.Equal(ParkReasons.AttemptsExhausted, row.ParkedReason);
            Assert.Equal(2, row.Attempts);
            Assert.False(string.IsNullOrEmpty(row.LastError));
            var last = $"flowing {renames}";
            await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { DisplayName: var name } && name == last);
            await EventuallyAsync(async () => await fixture.PendingAsync() == 1); // only the parked row is left unsent
        }
        finally
        {
            await DeleteRowsAsync([refused]);
            await fixture.StartDispatcherAsync();
        }
    }

    [Fact]
    public async Task ParkedRow_RequeuedByAPlatformAdmin_Published()
    {
        var account = await CreateAccountAsync("p-eu");
        var userId = "requeued-" + _unique;
        var id = await InsertRowAsync(account, "p-eu", nameof(UserChanged), Snapshot(account, userId), parked: true);
        try
        {
            await Task.Delay(1_000); // the dispatcher runs: a parked row is not sent
            Assert.Null(await fixture.Eu.UserAsync(userId));

            var response = await fixture.Platform.PostAsync($"/admin/v1/outbox/{id}/requeue", null);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await EventuallyAsync(async () => await fixture.Eu.UserAsync(userId) is { Deleted: false });
            // The row is marked sent once the broker confirmed it, which may come after the region applied the message.
            await EventuallyAsync(async () => (await RowsAsync([id]))[0].SentAt is not null);
        }
        finally
        {
            await DeleteRowsAsync([id]);
        }
    }

    private static string Snapshot(Guid account, string userId) => JsonSerializer.Serialize(new UserChanged
    {
        UserId = userId, AccountId = account, Email = userId + "@example.test", DisplayName = userId, Role = "member",
        Status = UserStatuses.Active, MfaEnrolled = false, Version = 1, ChangedAt = DateTimeOffset.UtcNow,
    }, OutboxEvents.JsonOptions);

    private async Task<long> InsertRowAsync(Guid account, string region, string messageType, string payload, bool parked = false)
    {
        var row = new OutboxMessage
        {
            Region = region, MessageType = messageType, Payload = payload, AccountId = account, CreatedAt = DateTimeOffset.UtcNow,
            ParkedAt = parked ? DateTimeOffset.UtcNow : null, ParkedReason = parked ? ParkReasons.AttemptsExhausted : null,
            Attempts = parked ? 5 : 0, LastError = parked ? "TimeoutException: no confirmation" : null,
        };
        await fixture.WithDatabaseAsync(async db =>
        {
            db.Outbox.Add(row);
            await db.SaveChangesAsync();
        });
        return row.Id;
    }

    private async Task<List<OutboxMessage>> RowsAsync(List<long> ids)
    {
        List<OutboxMessage> rows = [];
        await fixture.WithDatabaseAsync(async db => rows = await db.Outbox.AsNoTracking().Where(m => ids.Contains(m.Id)).OrderBy(m => m.Id).ToListAsync());
        return rows;
    }

    private Task DeleteRowsAsync(List<long> ids) =>
        fixture.WithDatabaseAsync(db => db.Outbox.Where(m => ids.Contains(m.Id)).ExecuteDeleteAsync());
}
