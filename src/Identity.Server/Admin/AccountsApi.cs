using System.Text.Json;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Audit;
using Identity.Core.Operations;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

using Account = Identity.Core.Accounts.Account;

public sealed record AccountView(Guid Id, string Name, string Status, IReadOnlyList<string> Regions, JsonElement Settings,
    int SettingsVersion, long Version, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static AccountView From(Account a) => new(a.Id, a.Name, a.Status.ToString().ToLowerInvariant(),
        [.. a.Regions.Select(r => r.RegionCode).Order(StringComparer.Ordinal)], JsonDocument.Parse(a.Settings).RootElement.Clone(),
        a.SettingsVersion, a.Version, a.CreatedAt, a.UpdatedAt);
}

public sealed record CreateAccountRequest(string? Name, List<string>? Regions);

public sealed record UpdateAccountRequest(string? Name);

/// <summary>Accounts: the customer companies. Platform administrators create and list them; account admins read and update their own.</summary>
public static class AccountsApi
{
    public static RouteGroupBuilder MapAccountsApi(this RouteGroupBuilder admin)
    {
        var accounts = admin.MapGroup("/accounts").WithTags("Accounts");
        accounts.MapGet("/", ListAsync);
        accounts.MapPost("/", CreateAsync).AcceptsJson<CreateAccountRequest>();
        accounts.MapGet("/{accountId:guid}", GetAsync);
        accounts.MapPatch("/{accountId:guid}", UpdateAsync).AcceptsJson<UpdateAccountRequest>();
        accounts.MapPost("/{accountId:guid}/suspend", (Guid accountId, HttpContext c, AuthorityDbContext db, AccountOperations o) =>
            PlatformOperationAsync(accountId, c, db, o.SuspendAsync));
        accounts.MapPost("/{accountId:guid}/activate", (Guid accountId, HttpContext c, AuthorityDbContext db, AccountOperations o) =>
            PlatformOperationAsync(accountId, c, db, o.ActivateAsync));
        accounts.MapDelete("/{accountId:guid}", DeleteAsync);
        accounts.MapPut("/{accountId:guid}/settings", PutSettingsAsync).AcceptsJson<JsonElement>();
        accounts.MapPut("/{accountId:guid}/regions/{region}", (Guid accountId, string region, HttpContext c, AuthorityDbContext db, AccountOperations o) =>
            PlatformOperationAsync(accountId, c, db, (a, actor, ct) => o.EnableRegionAsync(a, region, actor, ct)));
        accounts.MapDelete("/{accountId:guid}/regions/{region}", (Guid accountId, string region, HttpContext c, AuthorityDbContext db, AccountOperations o) =>
            PlatformOperationAsync(accountId, c, db, (a, actor, ct) => o.DisableRegionAsync(a, region, actor, ct)));
        return admin;
    }

    private static async Task<IResult> ListAsync(HttpContext context, AuthorityDbContext db, string? after, int? limit)
    {
        var actor = context.Admin();
        if (!AdminHttp.TryDecodeCursor(after, out var cursor) || (cursor is not null && !Guid.TryParse(cursor, out _)))
        {
            return AdminHttp.Invalid("after", "The cursor is not valid.");
        }

        var take = AdminHttp.ClampLimit(limit);
        var query = db.Accounts.AsNoTracking().Include(a => a.Regions).AsQueryable();
        if (!actor.IsPlatformAdmin)
        {
            query = query.Where(a => a.Id == actor.AccountId);
        }

        if (cursor is not null)
        {
            var last = Guid.Parse(cursor);
            query = query.Where(a => a.Id.CompareTo(last) > 0);
        }

        var page = await query.OrderBy(a => a.Id).Take(take + 1).ToListAsync(context.RequestAborted);
        var items = page.Take(take).Select(AccountView.From).ToList();
        return TypedResults.Ok(new Page<AccountView>(items, page.Count > take ? AdminHttp.EncodeCursor(items[^1].Id.ToString()) : null));
    }

    private static async Task<IResult> CreateAsync(HttpContext context, AccountOperations operations)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var (body, problem) = await AdminHttp.ReadAsync<CreateAccountRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var (result, account) = await operations.CreateAsync(body!.Name, body.Regions, actor.Actor, context.RequestAborted);
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(context.Response, account!.Version);
        return TypedResults.Created($"/admin/v1/accounts/{account.Id}", AccountView.From(account));
    }

    private static async Task<IResult> GetAsync(Guid accountId, HttpContext context, AuthorityDbContext db)
    {
        var account = await FindAsync(accountId, context, db, tracking: false);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        AdminHttp.SetETag(context.Response, account.Version);
        return TypedResults.Ok(AccountView.From(account));
    }

    private static async Task<IResult> UpdateAsync(Guid accountId, HttpContext context, AuthorityDbContext db, AccountOperations operations)
    {
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (AdminHttp.CheckIfMatch(context.Request, account.Version) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<UpdateAccountRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        return Answer(await operations.UpdateAsync(account, body!.Name, context.Admin().Actor, context.RequestAborted), account, context.Response);
    }

    /// <summary>Replaces the account's settings document, its policy; account admins may change their own account's.</summary>
    private static async Task<IResult> PutSettingsAsync(Guid accountId, HttpContext context, AuthorityDbContext db, AccountOperations operations)
    {
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (AdminHttp.CheckIfMatch(context.Request, account.Version) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<JsonDocument>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        using (body)
        {
            var result = await operations.ChangeSettingsAsync(account, body!.RootElement.GetRawText(), context.Admin().Actor, context.RequestAborted);
            return Answer(result, account, context.Response);
        }
    }

    /// <summary>A platform administrator's operation on the account the route names.</summary>
    private static async Task<IResult> PlatformOperationAsync(Guid accountId, HttpContext context, AuthorityDbContext db,
        Func<Account, Actor, CancellationToken, Task<OperationResult>> operation)
    {
        var actor = context.Admin();
        var account = await FindAsync(accountId, context, db, tracking: true);
        if (account is null)
        {
            return AdminHttp.NotFound("account");
        }

        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        return Answer(await operation(account, actor.Actor, context.RequestAborted), account, context.Response);
    }

    private static async Task<IResult> DeleteAsync(Guid accountId, HttpContext context, AuthorityDbContext db, AccountOperations operations)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return actor.CanSee(accountId) ? AdminActorExtensions.PlatformOnly() : AdminHttp.NotFound("account");
        }

        var account = await db.Accounts.SingleOrDefaultAsync(a => a.Id == accountId, context.RequestAborted);
        if (account is null)
        {
            return TypedResults.NoContent(); // idempotent: already gone
        }

        var result = await operations.DeleteAsync(account, actor.Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.NoContent() : AdminHttp.Refused(result);
    }

    /// <summary>An operation's outcome as the API answers it: the account as it now stands, with its version, or a problem.</summary>
    private static IResult Answer(OperationResult result, Account account, HttpResponse response)
    {
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(response, account.Version);
        return TypedResults.Ok(AccountView.From(account));
    }

    /// <summary>An account the caller may not see is reported as absent (404), never as forbidden.</summary>
    internal static Task<Account?> FindAsync(Guid accountId, HttpContext context, AuthorityDbContext db, bool tracking) =>
        VisibleAccounts.FindAsync(db, context.Admin(), accountId, tracking, context.RequestAborted);
}
