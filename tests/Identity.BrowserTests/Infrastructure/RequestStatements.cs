using System.Collections.Concurrent;
using System.Data.Common;
using Identity.Core.Data;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.BrowserTests.Infrastructure;

/// <summary>
/// The SQL statements an Identity host runs for each request path, counted by an EF Core interceptor on its DbContext
/// (background work, which has no request, is not counted): what one page costs the database.
/// </summary>
public sealed class RequestStatements : DbCommandInterceptor
{
    private readonly ConcurrentQueue<(string Path, string Sql)> _statements = new();
    private IHttpContextAccessor? _http;

    /// <summary>Adds the counter to a host's services (<see cref="RegionsFixture.StartIdentityAsync"/>).</summary>
    public void AddTo(IServiceCollection services)
    {
        services.AddHttpContextAccessor();
        services.ConfigureDbContext<AuthorityDbContext>((provider, options) =>
        {
            _http = provider.GetRequiredService<IHttpContextAccessor>();
            options.AddInterceptors(this);
        });
    }

    /// <summary>The statements the requests for <paramref name="path"/> have run so far (their SQL, in order).</summary>
    public IReadOnlyList<string> For(string path) =>
        [.. _statements.Where(s => string.Equals(s.Path, path, StringComparison.Ordinal)).Select(s => s.Sql)];

    public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result) =>
        Recorded(command, result);

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default) => ValueTask.FromResult(Recorded(command, result));

    public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result) =>
        Recorded(command, result);

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<int> result, CancellationToken cancellationToken = default) => ValueTask.FromResult(Recorded(command, result));

    public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result) =>
        Recorded(command, result);

    public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<object> result, CancellationToken cancellationToken = default) => ValueTask.FromResult(Recorded(command, result));

    private T Recorded<T>(DbCommand command, T result)
    {
        if (_http?.HttpContext?.Request.Path.Value is { } path)
        {
            _statements.Enqueue((path, command.CommandText.ReplaceLineEndings(" ")));
        }

        return result;
    }
}
